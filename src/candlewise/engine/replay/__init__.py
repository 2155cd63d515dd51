"""Block replay: a day of minutes at a time through the engine's rules (see ``block_engine``)."""
