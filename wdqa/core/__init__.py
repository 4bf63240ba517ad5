"""The core every other part imports and which imports none of them: errors, the registry, the types,
the suite format, diff math, the engine, model loading, the cache, the LLM client, Hub I/O and
measurement. Nothing here imports wdqa.benchmark, wdqa.generators, wdqa.baselines or wdqa.leaderboard.
"""
