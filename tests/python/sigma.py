"""Sigma rules evaluated again, independently: a small Sigma evaluator over the raw fixture JSON.

  sigma.py check FIXTURES FINDINGS RULES NOW
      for every rule of RULES (*.yml), the events of FIXTURES (as a store with 10 years of
      retention at NOW keeps them) that the rule matches must be the events of trawl's findings
      of that rule (FINDINGS: `trawl audit run --pack sigma --once --format ndjson`), rule by rule

It shares no code with trawl. It reads the rules with PyYAML and follows the Sigma
specification (v2.1.0): a map is the AND of its fields, a list of maps their OR, a list of values
their OR (`|all`: AND); values match whole and case-insensitively, `*` and `?` are wildcards;
`contains`, `startswith`, `endswith` add wildcards; `re` searches, case-sensitively; `null` is an
absent field; `fieldref` compares two fields. A field path descends through the event's objects
and into every list on the way (any element may match); an object is matched as its compact
JSON text. Conditions: `and`, `or`, `not`, parentheses, `1 of`/`all of` a pattern or `them`.
"""
import fnmatch
import json
import re
import sys
from collections import Counter

import yaml

import examples


# Objects the store's schema holds as structs (their fields typed, matched in any case).
STRUCTS = {"useridentity", "sessioncontext", "sessionissuer", "attributes", "webidfederationdata", "tlsdetails"}


def values(event, path):
    """The values a dotted path reaches: text, numbers and booleans as JSON text, objects as
    compact JSON, list elements one by one; nulls and missing fields give nothing."""
    out = []

    def walk(v, steps, typed=True):
        if isinstance(v, list):
            for item in v:
                walk(item, steps, typed)
        elif steps:
            if not isinstance(v, dict):
                return
            if steps[0] in v:
                key = steps[0]
            elif typed:
                # The store's columns and struct fields match in any case, as its lower-case
                # schema does; map keys and the JSON below them do not.
                key = next((k for k in v if k.lower() == steps[0].lower()), None)
                if key is None:
                    return
            else:
                return
            walk(v[key], steps[1:], typed and key.lower() in STRUCTS)
        elif v is None:
            pass
        elif isinstance(v, str):
            out.append(v)
        elif isinstance(v, bool):
            out.append("true" if v else "false")
        elif isinstance(v, dict):
            out.append(json.dumps(v, separators=(",", ":"), ensure_ascii=False))
        else:
            out.append(json.dumps(v))

    walk(event, path.split("."))
    return out


def wildcard(pattern):
    """A Sigma value with wildcards as a regular expression matched whole."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*?\\":
            out += re.escape(pattern[i + 1])
            i += 2
            continue
        out += ".*" if c == "*" else "." if c == "?" else re.escape(c)
        i += 1
    return out


def field_matches(event, key, expected):
    name, *mods = key.split("|")
    found = values(event, name)
    items = expected if isinstance(expected, list) else [expected]
    if "exists" in mods:
        return bool(found) == bool(expected)

    def one(v):
        if v is None:
            return not found
        v = v if isinstance(v, str) else json.dumps(v)
        if "fieldref" in mods:
            others = values(event, v)
            return any(a.lower() == b.lower() for a in found for b in others)
        if "re" in mods:
            flags = (re.I if "i" in mods else 0) | (re.M if "m" in mods else 0) | (re.S if "s" in mods else 0)
            return any(re.search(v, f, flags) for f in found)
        if "contains" in mods:
            v = "*" + v + "*"
        elif "startswith" in mods:
            v = v + "*"
        elif "endswith" in mods:
            v = "*" + v
        flags = re.S if "cased" in mods else re.S | re.I
        rx = re.compile(wildcard(v), flags)
        return any(rx.fullmatch(f) for f in found)

    return all(one(v) for v in items) if "all" in mods else any(one(v) for v in items)


def search_matches(event, search):
    if isinstance(search, dict):
        return all(field_matches(event, k, v) for k, v in search.items())
    return any(search_matches(event, s) for s in search)


def parse_condition(text, names):
    """A condition as a function of the set of search names that matched."""
    tokens = re.findall(r"\(|\)|[^\s()]+", text)
    pos = [0]

    def peek():
        return tokens[pos[0]] if pos[0] < len(tokens) else None

    def take():
        pos[0] += 1
        return tokens[pos[0] - 1]

    def expr_or():
        parts = [expr_and()]
        while peek() == "or":
            take()
            parts.append(expr_and())
        return lambda m: any(p(m) for p in parts)

    def expr_and():
        parts = [expr_not()]
        while peek() == "and":
            take()
            parts.append(expr_not())
        return lambda m: all(p(m) for p in parts)

    def expr_not():
        if peek() == "not":
            take()
            inner = expr_not()
            return lambda m: not inner(m)
        return atom()

    def atom():
        t = take()
        if t == "(":
            inner = expr_or()
            assert take() == ")"
            return inner
        if t in ("1", "all", "any"):
            assert take() == "of"
            pattern = take()
            if pattern == "them":
                chosen = [n for n in names if not n.startswith("_")]
            else:
                chosen = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            assert chosen, pattern
            return (lambda m: all(n in m for n in chosen)) if t == "all" else (lambda m: any(n in m for n in chosen))
        assert t in names, t
        return lambda m: t in m

    f = expr_or()
    assert pos[0] == len(tokens), text
    return f


def rule_matcher(rule):
    detection = dict(rule["detection"])
    conditions = detection.pop("condition")
    conditions = conditions if isinstance(conditions, list) else [conditions]
    tests = [parse_condition(c, list(detection)) for c in conditions]

    def matches(event):
        matched = {name for name, search in detection.items() if search_matches(event, search)}
        return any(t(matched) for t in tests)

    return matches


def check(root, findings_path, rules_dir, now):
    import datetime as dt
    import os

    events = examples.store_events(root, dt.datetime.fromisoformat(now.replace("Z", "+00:00")))
    got = {}
    with open(findings_path) as f:
        for line in f:
            finding = json.loads(line)
            got.setdefault(finding["audit"], Counter())[finding["eventid"]] += 1
    failures, matched_rules, total = [], 0, 0
    for name in sorted(os.listdir(rules_dir)):
        if not name.endswith(".yml"):
            continue
        with open(os.path.join(rules_dir, name)) as f:
            rule = yaml.safe_load(f)
        audit = name[:-4].replace("_", "-")
        matches = rule_matcher(rule)
        want = Counter(e.get("eventID") for e in events if matches(e))
        have = got.get(audit, Counter())
        if want != have:
            only_python = list((want - have).items())[:5]
            only_trawl = list((have - want).items())[:5]
            failures.append(f"{audit}: python {sum(want.values())}, trawl {sum(have.values())}; "
                            f"only python {only_python}, only trawl {only_trawl}")
        if want:
            matched_rules += 1
        total += sum(want.values())
        print(f"{audit}: {sum(want.values())} events {'ok' if want == have else 'DIFFER'}")
    assert not failures, "\n".join(failures)
    unknown = set(got) - {n[:-4].replace("_", "-") for n in os.listdir(rules_dir)}
    assert not unknown, f"findings of no rule: {unknown}"
    print(f"{matched_rules} rules match {total} events of {len(events)}; trawl agrees rule by rule")


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
