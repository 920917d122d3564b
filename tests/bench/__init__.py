"""The benchmark harness (bench/): only its parts that must be exact."""
