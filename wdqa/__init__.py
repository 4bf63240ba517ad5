"""wdqa: the WEIGHTDIFFQA benchmark. Subpackages live in the repository's top-level folders
(benchmark/, generators/, baselines/, leaderboard/, data_cards/) and install as wdqa.<folder>."""

__version__ = "0.1.0"
