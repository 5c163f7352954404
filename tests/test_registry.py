"""Every registered name resolves from a fresh interpreter through its entry point, and nothing is
registered without one."""

import importlib
import json
import pkgutil
import subprocess
import sys
from importlib.metadata import entry_points

import spacy_seqlab

GROUPS = (
    "spacy_factories",
    "spacy_architectures",
    "spacy_scorers",
    "spacy_readers",
    "spacy_callbacks",
    "spacy_misc",
    "spacy_cli",
    "thinc_llm_tasks",  # spacy-llm creates its registries in thinc's namespace
    "thinc_llm_models",
)


def _declared():
    return {
        (group, ep.name): ep.value
        for group in GROUPS
        for ep in entry_points(group=group)
        if ep.value.startswith("spacy_seqlab")
    }


def test_entry_points_are_declared_and_versioned():
    declared = _declared()
    assert declared, "spacy-seqlab is not installed with its entry points (pip install -e .)"
    for (group, name), _ in declared.items():
        if group not in ("spacy_factories", "spacy_cli"):
            assert name.startswith("spacy_seqlab.") and name.rsplit(".", 1)[-1].startswith("v"), name


def test_every_name_resolves_in_a_fresh_interpreter():
    declared = sorted(_declared())
    script = """
import json, sys
from spacy.util import registry
import spacy
out = {}
# Factories first, so no other entry point has imported their modules: spaCy loads the
# spacy_factories entry points when a Language is created.
for group, name in sorted(json.loads(sys.argv[1]), key=lambda item: item[0] != "spacy_factories"):
    if group == "spacy_factories":
        nlp = spacy.blank("en")
        # Building the default component checks its default config (weights load only at initialize).
        out[name] = spacy.Language.has_factory(name) and nlp.add_pipe(name) is not None
    elif group == "spacy_cli":
        registry.cli.get_all()
        out[name] = True
    elif group.startswith("thinc_llm_"):
        from spacy_llm.registry import registry as llm_registry
        out[name] = callable(llm_registry.get(group[len("thinc_"):], name))
    else:
        out[name] = callable(registry.get(group[len("spacy_"):], name))
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(declared)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    resolved = json.loads(result.stdout.strip().splitlines()[-1])
    assert resolved == {name: True for _, name in declared}


def test_everything_registered_has_an_entry_point():
    """Importing every module must not register a name that the entry points do not expose."""

    for module in pkgutil.walk_packages(spacy_seqlab.__path__, prefix="spacy_seqlab."):
        if module.name != "spacy_seqlab.__main__":
            importlib.import_module(module.name)
    declared = {name for _, name in _declared()}
    from spacy_llm.registry import registry as llm_registry

    for reg_name in ("architectures", "scorers", "readers", "callbacks", "misc", "llm_tasks", "llm_models"):
        names = {n for n in getattr(llm_registry, reg_name).get_all() if n.startswith("spacy_seqlab.")}
        assert names <= declared, f"{reg_name}: {sorted(names - declared)} lack an entry point in setup.cfg"
