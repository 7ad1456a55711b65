"""Fail unless every `name>=X` floor in pyproject.toml is exactly the version installed here.

Run by `make test-min` inside .venv-min, after ci/min-versions.txt is installed: the
floors are then the versions the subset of tests actually ran against.
"""
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def release(v):
    nums = [int(n) for n in re.match(r"\d+(\.\d+)*", v).group(0).split(".")]
    return tuple(nums + [0] * (4 - len(nums)))


project = tomllib.loads(Path(__file__).resolve().parents[1].joinpath("pyproject.toml").read_text())["project"]
reqs = project["dependencies"] + [r for extra in ("clustering", "parquet")
                                  for r in project["optional-dependencies"][extra]]
bad = []
for req in dict.fromkeys(reqs):
    m = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([0-9.]+)", req.strip())
    if not m:
        bad.append(f"{req}: not of the form name>=X")
        continue
    name, floor = m.group(1), m.group(3)
    try:
        have = version(name)
    except PackageNotFoundError:
        bad.append(f"{name}: floor {floor}, not installed")
        continue
    status = "ok" if release(have) == release(floor) else "MISMATCH"
    print(f"{name:15} floor {floor:8} installed {have:14} {status}")
    if status != "ok":
        bad.append(f"{name}: floor {floor}, installed {have}")
if bad:
    sys.exit("floors not tested:\n  " + "\n  ".join(bad))
