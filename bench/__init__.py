"""Benchmarks: each module measures one path beside the bare building blocks in the same run."""
