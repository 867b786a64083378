"""The intent model: data loading, training, evaluation and the micro-batching parser."""
