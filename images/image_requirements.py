"""`python3 image_requirements.py REQUIREMENTS EXCLUDE`: print REQUIREMENTS without the packages EXCLUDE names
(one name a line, # comments). The Containerfiles install the result with the lock file as
constraints, so an image gets exactly its environment's pins minus its development tools."""

import re
import sys


def name(requirement: str) -> str:
    return re.split(r"[\[=<>!~;@ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def select(requirements: str, exclude: str) -> str:
    dropped = {name(line) for line in exclude.splitlines() if line.strip() and not line.lstrip().startswith("#")}
    kept = [line for line in requirements.splitlines()
            if line.strip() and not line.lstrip().startswith("#") and name(line) not in dropped]
    return "".join(f"{line}\n" for line in kept)


if __name__ == "__main__":
    with open(sys.argv[1]) as req, open(sys.argv[2]) as exc:
        sys.stdout.write(select(req.read(), exc.read()))
