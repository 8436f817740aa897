"""The layers of zoopipe_core hold at run time: a lower layer never imports a higher one
(cli > testing > parallel > pipe > adapters | engines > plugins)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HIGHER_THAN_ADAPTERS = (
    "zoopipe_core.pipe",
    "zoopipe_core.parallel",
    "zoopipe_core.testing",
    "zoopipe_core.cli",
)


def _loaded_after(code: str) -> list[str]:
    script = code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_the_plugin_system_imports_no_adapter() -> None:
    loaded = _loaded_after(
        "from zoopipe_core import plugins\n"
        "plugins.load_plugins(); plugins.adapter_name_for_path('x.csv', 'input')"
    )
    assert [m for m in loaded if m.startswith("zoopipe_core.adapters")] == []


@pytest.mark.parametrize(
    "code",
    [
        "from zoopipe_core.adapters.resolve import resolve_input_adapter\nresolve_input_adapter('a.jsonl')",
        "from zoopipe_core import CSVInputAdapter\n"
        "import os, tempfile\npath = os.path.join(tempfile.mkdtemp(), 'a.csv')\n"
        "open(path, 'w').write('a\\n' + '1\\n' * 100)\nCSVInputAdapter(path).split(2)",
        "from zoopipe_core import JSONOutputAdapter\n"
        "import os, tempfile\nfolder = tempfile.mkdtemp()\n"
        "target = JSONOutputAdapter(os.path.join(folder, 'o.jsonl'))\n"
        "parts = [target.shard(i) for i in range(2)]\n"
        "[open(p.path, 'w').write('{}\\n') for p in parts]\ntarget.merge_parts(parts)",
    ],
    ids=["resolve", "split", "merge"],
)
def test_adapters_split_merge_and_resolve_without_the_layers_above(code: str) -> None:
    loaded = _loaded_after(code)
    assert [m for m in loaded if m.startswith(HIGHER_THAN_ADAPTERS)] == []
