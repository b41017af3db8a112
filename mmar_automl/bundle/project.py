"""A MONAI bundle as a project to search: its files, its ids, ``--set`` overrides, checks and job folders.

The second kind of project beside an MMAR (config/mmar.py). Torch-free: validate, run and the
executor import it; only the job process (bundle/job.py) runs MONAI. Layout (MONAI Model Zoo):

    ROOT/configs/metadata.json         what makes a folder a bundle
    ROOT/configs/train.json | .yaml    the training config: ``_target_`` components, ``@id`` references
    ROOT/configs/search.json | .yaml   top-level search entries whose args are bundle ids (optional)
    ROOT/configs/automl.json           controller, executor, handlers as in config_automl.json (optional)
    ROOT/models/ docs/ scripts/ ...
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmar_automl.config.mmar import DEFAULT_CKPT_DIR, label_path, locate
from mmar_automl.config.overrides import RunKeys, parse_overrides
from mmar_automl.config.suggest import did_you_mean
from mmar_automl.errors import ConfigError, UsageError
from mmar_automl.search.markers import bundle_id

METADATA = "configs/metadata.json"
TRAIN_NAMES = ("configs/train.json", "configs/train.yaml", "configs/train.yml")
SEARCH_NAMES = ("configs/search.json", "configs/search.yaml", "configs/search.yml")
AUTOML_FILE = "configs/automl.json"
JOB_CONFIG = "configs/train.json"       # a job's concrete config is always written as JSON
ID_SEP = "#"
EVALUATOR_ID = "validate#evaluator"     # MONAI's TrainProperties "evaluator"
TRAINER_ID = "train#trainer"            # MONAI's TrainProperties "trainer"
# The expressions ConfigWorkflow runs: "run", or "training" in Model Zoo bundles written before MONAI 1.2
# (run then by `python -m monai.bundle run training ...`).
RUN_IDS = ("run", "training")
# Copied into a job folder: small, and what ``monai.bundle run`` reads (code in scripts/ is imported).
COPIED = ("configs", "scripts", "docs")
# Never copied nor linked: outputs of this tool and of training (a job writes its own models/, eval/,
# results/...; a link would make every job write into the bundle's own folder).
NOT_LINKED = {"automl", "models", "eval", "results", "logs", "runs", "output", "outputs", "mlruns", "mlartifacts",
              "mlflow.db", "__pycache__", ".git"}


# What a job writes in its models/ (bundle/job.py, the bundle's CheckpointSaver, tracking/pytorch_model.py):
# never linked from the bundle's own models/.
JOB_MODEL_FILES = {"model.pt", "model.ts", "metrics.jsonl", "train_stats.json", "mlflow_model"}


def is_bundle(root: str | Path) -> bool:
    """A folder with configs/metadata.json and configs/train.json (or .yaml)."""
    root = Path(root)
    return (root / METADATA).is_file() and any((root / name).is_file() for name in TRAIN_NAMES)


def open_bundle(root: str | Path, train_config: str | Path | None = None) -> Bundle:
    """The bundle at ``root`` with its files located; nothing else read (``Bundle.at``)."""
    return Bundle.at(root, train_config)


@dataclass
class Bundle:
    """One bundle folder: the second kind of project beside ``config.mmar.Mmar``, with the same interface
    (root, train_config_file, automl_config_file, environment, train_config, overrides, run_keys, label,
    ckpt_dir, runs_dir, run_dir) plus what only a bundle has: its search file, its checks and its job
    folders. ``--set`` keys are bundle ids (``dataset_dir``, ``train#trainer#max_epochs``)."""

    root: Path
    train_config_file: Path
    automl_config_file: Path
    meta_file: Path
    search_file: Path | None = None
    environment: dict[str, Any] = field(default_factory=dict)   # a bundle has no environment.json
    train_config: dict[str, Any] | None = None                   # --set values written in (``open``)
    overrides: dict[str, Any] = field(default_factory=dict)
    run_keys: RunKeys = field(default_factory=RunKeys)
    automl_config_given: bool = False
    relative_labels: bool = True

    kind = "bundle"
    job_entry = "mmar_automl.bundle.job:main"
    job_preload = "mmar_automl.bundle.job:preload"
    ckpt_dir_name = DEFAULT_CKPT_DIR      # models/: the job's metrics.jsonl, train_stats.json, model.pt

    # -- opening ------------------------------------------------------------------------------------
    @classmethod
    def at(cls, root: str | Path, train_config: str | Path | None = None,
           automl_config: str | Path | None = None, *, relative_labels: bool = True) -> Bundle:
        """The bundle at ``root`` with its files located (configs/train.json or .yaml, the search file,
        configs/automl.json); no config is read."""
        given = Path(root)
        if not given.is_dir():
            raise ConfigError(root, None, "bundle root is not a folder")
        root_path = given.resolve()
        if train_config is not None:
            config_file = locate(given, train_config, TRAIN_NAMES[0])
        else:
            found = [root_path / n for n in TRAIN_NAMES if (root_path / n).is_file()]
            if len(found) > 1:
                raise ConfigError(root, None, f"both {found[0].relative_to(root_path)} and "
                                  f"{found[1].relative_to(root_path)} exist: keep one training config")
            config_file = found[0] if found else root_path / TRAIN_NAMES[0]
        searches = [root_path / n for n in SEARCH_NAMES if (root_path / n).is_file()]
        if len(searches) > 1:
            raise ConfigError(root, None, f"both {searches[0].name} and {searches[1].name} exist in configs/: keep one")
        automl_file = locate(given, automl_config, AUTOML_FILE)
        # A resumed run names the default file (its journal's header): still optional.
        given_automl = automl_config is not None and automl_file.resolve() != root_path / AUTOML_FILE
        return cls(root_path, config_file, automl_file, root_path / METADATA, searches[0] if searches else None,
                   automl_config_given=given_automl, relative_labels=relative_labels)

    @classmethod
    def open(cls, root: str | Path, train_config: str | Path | None = None, automl_config: str | Path | None = None,
             overrides: Iterable[str] | Mapping[str, Any] = (), *, relative_labels: bool = True) -> Bundle:
        """``at`` plus the train config read and the ``--set`` ids checked and written in (UsageError with
        a suggestion for an id the config does not have). Clara's run keys (``run_id``, ``workers``...)
        work as for an MMAR; ``trainconf=NAME`` names a file in configs/."""
        parsed = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
        run_keys, values = RunKeys.split(parsed)
        if run_keys.trainconf is not None:
            train_config = f"configs/{run_keys.trainconf}"
        bundle = cls.at(root, train_config, automl_config, relative_labels=relative_labels)
        config = bundle.load_config()
        checked = {bundle_id(key): bundle._absolute(value) for key, value in values.items()}
        for key in checked:
            find_id(config, key, bundle.config_name, what=f"--set {key}")
        return replace(bundle, train_config=apply_ids(config, checked), overrides=checked, run_keys=run_keys)

    # -- where things are ---------------------------------------------------------------------------
    def label(self, path: str | Path) -> str:
        """A file as messages name it: relative to the bundle root when inside it."""
        return label_path(self.root, path, self.relative_labels)

    @property
    def config_name(self) -> str:
        return self.label(self.train_config_file)

    @property
    def ckpt_dir(self) -> Path:
        return self.root / self.ckpt_dir_name

    @property
    def runs_dir(self) -> Path:
        """``automl/``, or Clara's MMARHandler ``work_dir`` of configs/automl.json (as for an MMAR)."""
        from mmar_automl.config.automl_config import runs_dir

        return runs_dir(self.root, self.automl_config_file)

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    # -- reading ------------------------------------------------------------------------------------
    def opened_config(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """``config`` when given, else the train config as opened (--set values in), else as written."""
        if config is not None:
            return config
        return self.train_config if self.train_config is not None else self.load_config()

    def load_config(self) -> dict[str, Any]:
        """The training config as written (no --set), JSON or YAML."""
        from mmar_automl.bundle.files import load_config_file

        if not self.train_config_file.is_file():
            raise ConfigError(self.config_name, None, "file not found")
        config = load_config_file(self.train_config_file, self.config_name)
        if not isinstance(config, dict):
            raise ConfigError(self.config_name, None, "a bundle config must be a mapping of ids at the top level")
        load_config_file(self.meta_file, self.label(self.meta_file))   # a broken metadata.json fails MONAI too
        return config

    def load_search_entries(self) -> list[Any]:
        """The entries of configs/search.json|yaml (``{"search": [...]}``); [] without the file, or when
        the file is the bundle's own (a MONAI config such as multi_organ_segmentation's DiNTS
        configs/search.yaml: a mapping of ids without a "search" key), which is then left alone."""
        if self.search_file is None:
            return []
        data = self._search_data()
        name = self.label(self.search_file)
        if data is None:
            return []
        for key in data:
            if key != "search":
                raise ConfigError(name, (key,), f"unknown key {key!r}{did_you_mean(key, ['search'])}: the search file "
                                  "holds only \"search\" (controllers go in configs/automl.json)")
        return data["search"]

    def owns_search_file(self) -> bool:
        """Whether configs/search.json|yaml is this tool's search file (not the bundle's own config)."""
        return self.search_file is not None and self._search_data() is not None

    def _search_data(self) -> dict[str, Any] | None:
        from mmar_automl.bundle.files import load_config_file
        from mmar_automl.config.suggest import edit_distance

        assert self.search_file is not None
        name = self.label(self.search_file)
        data = load_config_file(self.search_file, name)
        if isinstance(data, dict) and "search" in data:
            return data
        if isinstance(data, dict) and data and not any(edit_distance(str(k), "search") <= 1 for k in data):
            return None     # the bundle's own file, e.g. a DiNTS architecture search config
        raise ConfigError(name, None, "expected a mapping with one key \"search\": a list of search entries "
                          "({domain, type, args, targets}, args are bundle ids such as 'optimizer#lr')")

    def search_space(self, config: dict[str, Any] | None = None) -> Any:
        """The space of the search file and the inline ``search`` lists beside ``_target_``: one parser
        (search/parse.py) with the bundle dialect. ``config``: default the train config as opened."""
        from mmar_automl.search import markers as mk
        from mmar_automl.search.parse import parse_search_space

        config = self.opened_config(config)
        if isinstance(config.get(mk.SEARCH_KEY), list):
            raise ConfigError(self.config_name, (mk.SEARCH_KEY,), "top-level search entries of a bundle go in "
                              "configs/search.json (args are ids such as 'optimizer#lr'); inline ones beside "
                              "a component's _target_")
        merged = dict(config)
        merged[mk.SEARCH_KEY] = self.load_search_entries()
        return parse_search_space(merged, self.config_name, dialect=mk.BUNDLE,
                                  search_file=self.label(self.search_file) if self.search_file else None)

    def config_values(self, space: Any) -> dict[str, Any]:
        """As ``Mmar.config_values``, read with the bundle dialect."""
        from mmar_automl.search import markers as mk
        from mmar_automl.search.render import config_value

        return {d.name: config_value(self.opened_config(), d, mk.BUNDLE) for d in space}

    def check_not_searched(self, space: Any) -> None:
        """A searched id fixed with --set would hide the search: exit 2."""
        searched = {ID_SEP.join(str(p) for p in (*c.component, c.arg)): d.name for d in space for c in d.consumers}
        for key in self.overrides:
            if key in searched:
                raise UsageError(f"--set {key}: this id is searched (dimension {searched[key]!r}); a fixed value "
                                 "would hide the search")

    def _absolute(self, value: Any) -> Any:
        """A ``--set`` value that is a relative path existing from the bundle root (else the current
        folder) becomes absolute: jobs run in their own folders."""
        if not isinstance(value, str) or not value or value[0] in "$@%" or os.path.isabs(value):
            return value
        for base in (self.root, Path.cwd()):
            try:
                if ("/" in value or "." in value or (base / value).is_dir()) and (base / value).exists():
                    return str((base / value).resolve())
            except OSError:
                pass
        return value

    # -- checks before anything runs ------------------------------------------------------------------
    def check(self, config: dict[str, Any] | None = None) -> None:
        """What would make every job useless: nothing to train, nothing to score, data not there.
        ``config``: default the train config as opened (--set values in)."""
        config = self.opened_config(config)
        file = self.config_name
        if trainer_id(config) is None:
            raise ConfigError(file, TRAINER_ID, "missing: the training workflow needs a trainer at id "
                              f"'{TRAINER_ID}' (MONAI's train properties) or one *Trainer component")
        if workflow_run_id(config) is None:
            raise ConfigError(file, RUN_IDS[0], "missing: MONAI's bundle workflow runs the expressions at id 'run' "
                              "(older bundles: 'training'), e.g. [\"$@train#trainer.run()\"]")
        evaluator_at = evaluator_id(config)
        if evaluator_at is None:
            raise ConfigError(file, EVALUATOR_ID, "missing: nothing to score a job with; expected a "
                              f"SupervisedEvaluator with a key_val_metric at id '{EVALUATOR_ID}' (or the id a "
                              "ValidationHandler's validator names), run by a ValidationHandler in train#handlers")
        evaluator = _lookup(config, evaluator_at)
        if isinstance(evaluator, dict) and "key_val_metric" not in evaluator:
            raise ConfigError(file, f"{evaluator_at}#key_val_metric", "missing: the score of a job is the "
                              "evaluator's key metric (e.g. \"key_val_metric\": \"@validate#key_metric\")")
        if isinstance(evaluator, dict) and _lower_is_better(evaluator.get("metric_cmp_fn")):
            raise ConfigError(file, f"{evaluator_at}#metric_cmp_fn", f"{evaluator['metric_cmp_fn']!r}: a key metric "
                              "where lower is better is not supported: a job's score is its key metric and the search "
                              "maximizes it (it would look for the worst model); use a key metric where higher is better")
        if not any(_target_name(node) == "ValidationHandler" for _, node in _objects(config)):
            raise ConfigError(file, "train#handlers", "no ValidationHandler: the evaluator at "
                              f"'{evaluator_at}' would never run, so no job would have a score")
        for key, value in _data_paths(config):
            if not _referenced(config, key):
                continue   # e.g. a dataset_dir the bundle ships but reads its data lists elsewhere
            plain = _joined_path(config, value, self.root)
            if plain is None:
                continue
            path = Path(plain) if os.path.isabs(plain) else self.root / plain
            if not path.exists():
                shown = repr(value) if plain == value else f"{value!r} ({path})"
                raise ConfigError(file, key, f"data path {shown} does not exist: give the data's location "
                                  f"with --set {key}=/path/to/data")

    # -- job folders -----------------------------------------------------------------------------------
    def write_job_folder(self, job_dir: Path, concrete: dict[str, Any], extra: Mapping[str, Any] | None = None) -> Path:
        """``job_dir`` = a bundle: configs/ (the concrete train.json), scripts/ and docs/ copied, every other
        top-level entry of the bundle (data folders...) linked, an empty models/. Returns the config path."""
        from mmar_automl.run.jobfolder import write_json_atomic

        job_dir.mkdir(parents=True, exist_ok=False)
        for entry in sorted(self.root.iterdir()):
            if entry.name in NOT_LINKED or entry.name.startswith("."):
                continue
            if entry.name in COPIED and entry.is_dir():
                shutil.copytree(entry, job_dir / entry.name, symlinks=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif entry.suffix == ".py" and entry.is_file():
                shutil.copy2(entry, job_dir / entry.name)
            else:
                os.symlink(entry, job_dir / entry.name)
        configs = job_dir / "configs"
        configs.mkdir(exist_ok=True)
        ours = [str(self.search_file.relative_to(self.root))] if self.owns_search_file() else []
        for name in (*TRAIN_NAMES, *ours, AUTOML_FILE):
            (job_dir / name).unlink(missing_ok=True)   # the concrete config replaces them; no search in a job
        (job_dir / "models").mkdir(exist_ok=True)
        for entry in sorted((self.root / "models").glob("*")) if (self.root / "models").is_dir() else []:
            # What a bundle reads from its own models/ besides its trained weights (DiNTS's searched
            # architecture "models/search_code_18590.pt"): linked. Its model.pt is not (the job's own).
            if entry.name not in JOB_MODEL_FILES and not entry.name.startswith("."):
                os.symlink(entry, job_dir / "models" / entry.name)
        config_path = job_dir / JOB_CONFIG
        write_json_atomic(config_path, concrete)
        if extra:
            write_json_atomic(job_dir / "automl_job.json", {**extra, "rerun": rerun_command(job_dir, workflow_run_id(concrete))})
        return config_path


def rerun_command(job_dir: Path, run_at: str | None = RUN_IDS[0]) -> str:
    """The command that runs a job folder again with MONAI alone (what the job process does, less the
    recorder)."""
    run_arg = f"--run_id {run_at} " if run_at not in (None, RUN_IDS[0]) else ""
    return (f"python -m monai.bundle run {run_arg}--config_file {job_dir / JOB_CONFIG} "
            f"--meta_file {job_dir / METADATA} --bundle_root {job_dir}")


# -- bundle ids -------------------------------------------------------------------------------------------

def apply_ids(config: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with each ``{id: value}`` written in (the ids exist: ``find_id``)."""
    import copy

    out = copy.deepcopy(config)
    for key, value in values.items():
        parts = split_id(out, key)
        node = out
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = copy.deepcopy(value)
    return out


def split_id(config: Any, key: str) -> list[str | int]:
    """``train#handlers#0#interval`` -> ["train", "handlers", 0, "interval"] (list indices as ints)."""
    parts: list[str | int] = []
    node = config
    for part in key.split(ID_SEP):
        if isinstance(node, list) and part.isdigit():
            parts.append(int(part))
            node = node[int(part)] if int(part) < len(node) else None
        else:
            parts.append(part)
            node = node.get(part) if isinstance(node, dict) else None
    return parts


def find_id(config: Any, key: str, file: str, what: str) -> Any:
    """The value at a bundle id; UsageError naming the first missing part, with a suggestion."""
    node = config
    done: list[str] = []
    for part in key.split(ID_SEP):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            prefix = ID_SEP.join(done)
            options = ([f"{prefix}{ID_SEP}{k}" if prefix else str(k) for k in node] if isinstance(node, dict)
                       else [f"{prefix}{ID_SEP}{i}" for i in range(len(node))] if isinstance(node, list) else [])
            missing = f"{prefix}{ID_SEP}{part}" if prefix else part
            raise UsageError(f"{what}: {file} has no id {missing!r}{did_you_mean(missing, options)}")
        done.append(part)
    return node


def _lookup(config: Any, key: str) -> Any:
    """The value at a bundle id, or None where there is none (find_id's walk, without its error)."""
    try:
        return find_id(config, key, "", "")
    except UsageError:
        return None


def workflow_run_id(config: dict[str, Any]) -> str | None:
    """The id of the expressions the training workflow runs (``RUN_IDS``), None when there are none."""
    return next((ident for ident in RUN_IDS if ident in config), None)


def trainer_id(config: dict[str, Any]) -> str | None:
    """Where the bundle's trainer is: MONAI's ``train#trainer``, else the one component whose class is a
    ``...Trainer`` (the Model Zoo's templates keep it at the top level: ``trainer``)."""
    if _lookup(config, TRAINER_ID) is not None:
        return TRAINER_ID
    found = [ident for ident, node in _objects(config) if _target_name(node).endswith("Trainer")]
    return found[0] if len(found) == 1 else None


def evaluator_id(config: dict[str, Any]) -> str | None:
    """Where the evaluator that scores a job is: MONAI's ``validate#evaluator``, else the id a
    ValidationHandler's ``validator`` refers to (``"@evaluator"``)."""
    if _lookup(config, EVALUATOR_ID) is not None:
        return EVALUATOR_ID
    for _, node in _objects(config):
        ref = node.get("validator") if _target_name(node) == "ValidationHandler" else None
        if isinstance(ref, str) and ref.startswith("@") and _lookup(config, ref[1:]) is not None:
            return ref[1:]
    return None


_CMP = re.compile(r"^\$\s*lambda\s+(\w+)\s*,\s*(\w+)\s*:\s*(\w+)\s*([<>])=?\s*(\w+)\s*$")


def _lower_is_better(cmp_fn: Any) -> bool:
    """Whether an evaluator's ``metric_cmp_fn`` (MONAI calls it as ``fn(current, best)``) is the Model Zoo's
    "lower is better" (mednist_reg: ``"$lambda x, y: x < y"``); other expressions are not judged."""
    match = _CMP.match(cmp_fn) if isinstance(cmp_fn, str) else None
    if match is None:
        return False
    current, best, left, op, right = match.groups()
    return (left, op, right) in ((current, "<", best), (best, ">", current))


def _objects(node: Any, prefix: str = "") -> Any:
    """(id, object) for every object of a config, depth first."""
    if isinstance(node, dict):
        yield prefix, node
        for key, value in node.items():
            yield from _objects(value, f"{prefix}{ID_SEP}{key}" if prefix else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{prefix}{ID_SEP}{i}")


def _target_name(node: dict[str, Any]) -> str:
    target = node.get("_target_")
    return target.rpartition(".")[2] if isinstance(target, str) else ""


def _referenced(config: Any, ident: str) -> bool:
    """Whether some string of the config refers to ``ident`` (``@dataset_dir``, ``%dataset_dir``)."""
    import re

    pattern = re.compile(r"[@%]" + re.escape(ident) + r"(?![\w#])")
    return any(pattern.search(text) for text in _strings(config))


def _strings(node: Any):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


_DATA_WORDS = ("data", "dataset")
_OUTPUT_WORDS = ("output", "ckpt", "log", "save", "cache", "model")


# The Model Zoo's relative data location: "$@bundle_root + '/train_data'" (segmentation_template).
_JOINED = re.compile(r"""^\$\s*@(\w+)\s*\+\s*(['"])([^'"]*)\2\s*$""")


def _joined_path(config: dict[str, Any], value: str, root: Path) -> str | None:
    """A data location as the job will see it: a plain path, or ``$@ID + '/sub'`` where ID is
    ``bundle_root`` (the job folder, where the bundle's data folders are linked) or a plain path;
    None for any other expression (not evaluated before the job runs)."""
    match = _JOINED.match(value)
    if match is None:
        return value
    ident, _, tail = match.groups()
    base = str(root) if ident == "bundle_root" else config.get(ident)
    if not isinstance(base, str) or not base or base[0] in "$@%":
        return None
    return base + tail


def _data_paths(config: Any, prefix: str = ""):
    """(id, path) for plain-string values the bundle reads data from: keys naming data (``dataset_dir``,
    ``data_list_file_path``, ``data_root``) whose value is a path, not an expression or a reference."""
    if isinstance(config, dict):
        for key, value in config.items():
            ident = f"{prefix}{ID_SEP}{key}" if prefix else str(key)
            lowered = str(key).lower()
            if (isinstance(value, str) and value and (value[0] not in "$@%" or _JOINED.match(value))
                    and any(w in lowered for w in _DATA_WORDS)
                    and not any(w in lowered for w in _OUTPUT_WORDS) and ("/" in value or os.sep in value)
                    and not any(c in value for c in "*?[{")):
                yield ident, value
            elif isinstance(value, (dict, list)):
                yield from _data_paths(value, ident)
    elif isinstance(config, list):
        for i, value in enumerate(config):
            yield from _data_paths(value, f"{prefix}{ID_SEP}{i}")
