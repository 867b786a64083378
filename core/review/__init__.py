"""The review inbox: which recorded turns are worth a person's look, the labels reviewers give
them, the live precision those labels estimate, and the training-data file they are kept in."""
