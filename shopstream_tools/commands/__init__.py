"""The `shopstream` CLI's commands, by what they act on; ``shopstream_tools/cli.py`` parses."""
