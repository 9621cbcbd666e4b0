"""The peers fraudcore is compared with in ``bench/peers_suite.py``, one small
module each.

Stateless (the 20 rules of bench/rules20.yaml), each an object with
``name``, ``version``, ``unsupported`` (rule id -> why it could not be
expressed; empty when all 20 are) and ``matched(event) -> [rule ids]`` in
file order:

- ``rule_engine_peer``: PyPI ``rule-engine``, one ``rule_engine.Rule`` a rule;
- ``zen_peer``: PyPI ``zen-engine`` (GoRules), one decision table;
- ``cel_rust_peer``: PyPI ``common-expression-language`` (a Rust CEL);
- ``celpy_peer``: PyPI ``cel-python`` (``celpy``, pure Python);
- ``common``: what they share (the rules file, the rules that read alike in
  rule-engine and ZEN, fraudcore's decision from a list of matched rules).

Stateful (velocity counters of examples/rules.yaml): ``velocity`` (the
counters and their rules, plain Python, a brute-force oracle),
``redis_counters`` (sorted sets and time buckets over redis-py) and
``redis_server`` (a throwaway redis-server on a loopback port).

``plot`` draws the suite's bar chart.

Only the four peer modules and the suite's Redis client import packages
that the test dependencies lack: ``make bench-deps`` (bench/deps.sh,
bench/requirements-bench.txt) installs them and Debian's redis-server.
"""
