"""Dataset image lists, built for size (see `store` for the API).

* `store`: every read and write of `ImageV2` rows;
* `matching`: filters as SQL conditions (Python equality, GIN-friendly);
* `summaries`: per-dataset counts kept in step with every write.
"""
