"""One module per subcommand; each has `register(subparsers)` and is found automatically."""
