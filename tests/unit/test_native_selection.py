"""Native selection happens in one place and has a kill-switch."""

import json
import os
import subprocess
import sys

import pytest

import fraudcore
from fraudcore import _native

PROBE = """
import json, fraudcore, fraudcore._native as n
p = fraudcore.cel.compile('x + 1 > 2', {'x': 'int'})
print(json.dumps({'vm': n.vm is not None, 'native': p.native, 'value': p.evaluate({'x': 5}),
                  'blockers': p.native_blockers}))
"""


def _probe(env_value: str | None) -> dict:
    env = dict(os.environ)
    env.pop("FRAUDCORE_NO_EXTENSIONS", None)
    if env_value is not None:
        env["FRAUDCORE_NO_EXTENSIONS"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_kill_switch_selects_the_reference_path():
    result = _probe("1")
    assert result == {"vm": False, "native": False, "value": True, "blockers": ["native extension unavailable"]}


@pytest.mark.skipif(_native.DISABLED, reason="extensions disabled for this run")
def test_extension_is_built_and_selected():
    assert _native.IMPORT_ERROR is None, f"native VM failed to import: {_native.IMPORT_ERROR}"
    result = _probe(None)
    assert result["vm"] and result["native"] and result["value"] is True


def test_same_answer_either_way():
    assert _probe("1")["value"] == _probe("0")["value"] == fraudcore.cel.evaluate("5 + 1 > 2")
