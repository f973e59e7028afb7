"""Each variant of recipes/pathways/dev_study.sh means what its name says whatever the base config chooses: its
overlay, merged onto conf/pathways.yaml, gives its method the re-evaluation it is named for (a per-method section
of the base config once overrode the variants' shared settings, and three variants ran identically)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from asrprune.pruning.masking.methods import method_reevaluation
from asrprune.training.config import deep_merge

PATHWAYS = Path(__file__).resolve().parents[3] / "recipes" / "pathways"
EXPECTED = {  # variant: (method, ranking, adjust)
    "dap_saliency": ("dap", "tensor", False),
    "dap_saliency_global": ("dap", "global", False),
    "dap_parp": ("dap", "global", True),
    "dap_parp_tensor": ("dap", "tensor", True),
    "adaptive_magnitude": ("adaptive", "tensor", False),
    "adaptive_parp": ("adaptive", "global", True),
    "adaptive_global": ("adaptive", "global", False),
    "adaptive_fast_ramp": ("adaptive", "global", True),
}


def overlays() -> dict[str, dict]:
    """``overlay[<variant>]="<yaml>"`` assignments of dev_study.sh (a ``$tensor`` value resolved)."""
    text = (PATHWAYS / "dev_study.sh").read_text(encoding="utf-8")
    shared = {"$tensor": yaml.safe_load(re.search(r'^tensor="(.*?)"', text, re.M | re.S)[1])}
    found = {}
    for name, quoted, variable in re.findall(r'overlay\[(\w+)\]=(?:"(.*?)"|(\$\w+))', text, re.S):
        found[name] = shared[variable] if variable else yaml.safe_load(quoted)
    return found


@pytest.mark.parametrize("base", ["pathways.yaml", "pathways_gpu.yaml"])
def test_every_variant_sets_its_methods_reevaluation(base):
    config = yaml.safe_load((PATHWAYS / "conf" / base).read_text(encoding="utf-8"))
    found = overlays()
    assert set(EXPECTED) <= set(found)
    for variant, (method, ranking, adjust) in EXPECTED.items():
        options = method_reevaluation(deep_merge(config, found[variant]), method)
        assert (options["ranking"], options["adjust"]) == (ranking, adjust), variant
