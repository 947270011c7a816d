# What the release artifact builder (scripts/release/artifact.ts) asks the hosts' Python, run as
# /usr/bin/python3 -I: with pip's own requirements parser and pip's vendored `packaging`, so the
# answers are the ones pip gives on the hosts. Prints JSON on stdout.
#
#   host                      {"python": "3.11.2", "machine": "x86_64", "os": "debian 12"}
#   requirements FILE NAME…   every requirement of FILE: name, specifier, pinned version, sha256
#                             hashes, and whether the installed distribution of a NAME satisfies it
#   wheels FILE…              per wheel file name: its tags and whether this Python installs it
import json
import platform
import sys


def host():
    release = {}
    try:
        with open("/etc/os-release") as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                release[k] = v.strip('"')
    except OSError:
        pass
    return {"python": platform.python_version(), "machine": platform.machine(),
            "os": f"{release.get('ID', '?')} {release.get('VERSION_ID', '?')}"}


def requirements(path, system):
    import importlib.metadata
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import parse_requirements
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name
    system = {canonicalize_name(n) for n in system}
    out = []
    for parsed in parse_requirements(path, session=PipSession()):
        if parsed.is_editable:
            raise SystemExit(f"{path}: {parsed.requirement}: an editable requirement cannot go into a release")
        try:
            req = Requirement(parsed.requirement)
        except Exception:
            raise SystemExit(f"{path}: '{parsed.requirement}' is not a requirement of a named package (a URL or a path cannot go into a release)")
        name = canonicalize_name(req.name)
        pins = [s.version for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
        satisfied = None
        if name in system:
            try:
                installed = importlib.metadata.version(req.name)
                satisfied = req.specifier.contains(installed, prereleases=True)
            except importlib.metadata.PackageNotFoundError:
                satisfied = None
        out.append({"line": parsed.requirement, "name": name, "specifier": str(req.specifier),
                    "pinned": pins[0] if len(req.specifier) == 1 and pins else None,
                    "sha256": (parsed.options or {}).get("hashes", {}).get("sha256", []),
                    "system": satisfied, "source": parsed.comes_from})
    return out


def wheels(files):
    from pip._vendor.packaging.tags import sys_tags
    from pip._vendor.packaging.utils import InvalidWheelFilename, parse_wheel_filename
    supported = set(sys_tags())
    out = []
    for f in files:
        try:
            name, version, _, tags = parse_wheel_filename(f)
        except InvalidWheelFilename:
            out.append({"file": f, "name": None, "tags": [], "installs": False})
            continue
        out.append({"file": f, "name": str(name), "version": str(version),
                    "tags": sorted(str(t) for t in tags), "installs": bool(tags & supported)})
    return out


if __name__ == "__main__":
    what, args = sys.argv[1], sys.argv[2:]
    if what == "host":
        print(json.dumps(host()))
    elif what == "requirements":
        print(json.dumps(requirements(args[0], args[1:])))
    elif what == "wheels":
        print(json.dumps(wheels(args)))
    else:
        raise SystemExit(f"unknown question {what}")
