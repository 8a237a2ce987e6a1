"""Artifact benchmarks: object permanence, identity, physics, causality and persistence measured in any clip.

perception.py  find, describe and track the world's objects in RGB clips (`perceive`)
metrics.py     per-clip metrics from perception (`measure`, `measure_clip`) and their aggregation
inject.py      artifacts injected into world clips and the artifact x metric validation (`validate`)
suite.py       the fixed prompt suite (data/suite.json, from the "bench" seed split)
report.py      run sources (world, generator, weak generator, a folder) -> report.json + report.html
cli.py         `daas bench artifacts` and `daas bench validate`
speed/         pytest-benchmark speed benchmarks (`make bench`)
"""
