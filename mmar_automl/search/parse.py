"""config_train.json -> SearchSpace: every construct of Clara's search grammar (DESIGN.md section 3).

Three passes, each with one job:
1. find the markers (``search`` lists, ``apply`` objects, the legacy ``lr_search``) and check each
   search entry on its own: keys, domain, type, args, targets, and that each arg exists;
2. link the variables (aliases, free variables, searched first-level keys) to their ``apply``
   consumers, and check that no place is written by two dimensions;
3. name the dimensions (PRL and readable name) and build the frozen value classes.

Every malformed input raises ConfigError(file, JSON path, what is wrong and what is expected).

The same passes read a MONAI bundle (``dialect=markers.BUNDLE``): a component's args are its own keys
beside ``_target_``, ``@disabled`` writes ``_disabled_``, and a top-level arg may be a bundle id
(``optimizer#lr``, ``train#preprocessing#transforms#2#prob``) that names an arg anywhere in the config.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmar_automl.errors import ConfigError, format_json_path
from mmar_automl.search import markers as mk
from mmar_automl.search import mistakes
from mmar_automl.search.names import readable_names
from mmar_automl.search.space import (
    DISABLED_ARG,
    Consumer,
    Dimension,
    EnumDimension,
    FloatDimension,
    IntDimension,
    JsonPathParts,
    SearchSpace,
    canonical_choice,
)
from mmar_automl.config.suggest import did_you_mean


@dataclass
class _Arg:
    text: str                      # as written, e.g. "probability#myProb" or "@myVar"
    target: str | None             # the arg / first-level key / "@disabled" it writes; None for a free variable
    variable: str | None           # the name ``apply`` can use: alias, free variable or first-level key
    where: JsonPathParts           # JSON path of this arg in the entry
    component: JsonPathParts | None = None   # where ``target`` lives when not in the entry's component (bundle ids)


@dataclass
class _Entry:
    component: JsonPathParts       # () for the top level
    label: str | None              # the component's key or name, for the readable name
    index: int                     # position in its search list
    where: JsonPathParts           # JSON path of the entry
    domain: str
    type: str
    args: list[_Arg]
    low: float = 0.0
    high: float = 0.0
    log: bool = False              # extension: float/int on a log scale
    step: int = 1                  # extension: int spacing
    choices: tuple[tuple[Any, ...], ...] = ()
    consumers: list[Consumer] = field(default_factory=list)
    consumer_where: list[JsonPathParts] = field(default_factory=list)   # where each consumer was written
    prl: str = ""

    def value_at(self, k: int) -> list[Any]:
        """Every value arg ``k`` can take (enum), for checks such as '@disabled needs booleans'."""
        return [choice[k] for choice in self.choices]


def parse_search_space(train_config: Any, file: str | Path = "config_train.json", *,
                       dialect: mk.Dialect = mk.CLARA, search_file: str | Path | None = None) -> SearchSpace:
    """Build the search space of a config_train.json (already loaded, e.g. by ``jsonfile.load_json``).

    ``search_file``: the file the top-level ``search`` list was read from when it is not ``file``
    (a bundle's configs/search.json); errors inside that list name it.
    Raises ConfigError naming the file and the JSON path of the first malformed construct.
    """
    return _Parser(train_config, str(file), dialect, None if search_file is None else str(search_file)).parse()


class _Parser:
    def __init__(self, config: Any, file: str, dialect: mk.Dialect = mk.CLARA, search_file: str | None = None):
        self.config = config
        self.file = file
        self.dialect = dialect
        self.search_file = search_file
        self.entries: list[_Entry] = []
        self.applies: list[tuple[JsonPathParts, dict[str, Any]]] = []
        self.used: set[str] = set()        # variables that some ``apply`` consumes
        self.components: list[tuple[JsonPathParts, dict[str, Any]]] = []

    def error(self, where: JsonPathParts, message: str) -> ConfigError:
        top_search = self.search_file is not None and where[:1] == (mk.SEARCH_KEY,)
        return ConfigError(self.search_file if top_search else self.file, where, message)

    def _raise(self, problem: mistakes.Problem | None) -> None:
        if problem is not None:
            raise self.error(*problem)

    # -- pass 1: markers and entries --------------------------------------------------------------
    def parse(self) -> SearchSpace:
        if not isinstance(self.config, dict):
            raise ConfigError(self.file, None, f"expected a JSON object at the top level, got {_kind(self.config)}")
        for path, node in mk.iter_components(self.config, dialect=self.dialect):
            self.components.append((path, node))
            self._raise(mistakes.in_component(path, node))
            if mk.SEARCH_KEY in node:
                self._search_block(path, node)
            if mk.APPLY_KEY in node:
                if not path:
                    raise self.error((mk.APPLY_KEY,), "'apply' belongs inside a component, not at the top level")
                self.applies.append((path, node))
            if not path and mk.LEGACY_LR_KEY in node:
                self._legacy_lr(node[mk.LEGACY_LR_KEY])
        variables = self._variables()
        for path, node in self.components:
            self._raise(mistakes.apply_in_args(path, node, variables))
        self._link_applies(variables)
        self._check_consumers(variables)
        return self._build()

    def _search_block(self, path: JsonPathParts, node: dict[str, Any]) -> None:
        block = node[mk.SEARCH_KEY]
        where = (*path, mk.SEARCH_KEY)
        if not isinstance(block, list):
            raise self.error(where, f"'search' must be a list of entries, got {_kind(block)}")
        label = _component_label(path, node)
        for i, entry in enumerate(block):
            self.entries.append(self._entry(path, node, label, i, entry, (*where, i)))

    def _entry(self, path: JsonPathParts, node: dict[str, Any], label: str | None, index: int,
               raw: Any, where: JsonPathParts) -> _Entry:
        if not isinstance(raw, dict):
            raise self.error(where, f"a search entry must be an object with {_keys_text()}, got {_kind(raw)}")
        for key in raw:
            if key not in mk.ENTRY_KEYS and key not in mk.OPTIONAL_ENTRY_KEYS:
                known = (*mk.ENTRY_KEYS, *mk.OPTIONAL_ENTRY_KEYS)
                raise self.error((*where, key), f"unknown key {key!r}{did_you_mean(key, known)}: "
                                 f"a search entry has {_keys_text()} (and optionally 'log', 'step')")
        for key in mk.ENTRY_KEYS:
            if key not in raw:
                raise self.error(where, f"search entry has no {key!r}: it needs {_keys_text()}")
        domain = raw["domain"]
        if not isinstance(domain, str) or not mk.is_domain(domain):
            raise self.error((*where, "domain"), f"domain must be a word such as 'lr', 'net' or 'transform', got {_json(domain)}")
        type_ = raw["type"]
        if type_ not in mk.TYPES:
            hint = did_you_mean(type_, mk.TYPES) if isinstance(type_, str) else ""
            raise self.error((*where, "type"), f"unknown type {_json(type_)}{hint}: expected 'float', 'int' or "
                             "'enum' (search booleans as enum)")
        entry = _Entry(path, label, index, where, domain, type_, self._args(path, node, raw["args"], (*where, "args")))
        entry.prl = _prl(entry, [a.text for a in entry.args])
        if type_ == "enum":
            self._enum_targets(entry, raw["targets"], (*where, "targets"))
        else:
            self._range_targets(entry, raw["targets"], (*where, "targets"))
        self._scale(entry, raw, where)
        return entry

    def _scale(self, entry: _Entry, raw: dict[str, Any], where: JsonPathParts) -> None:
        """The extension keys: ``log`` (float, int) and ``step`` (int), checked against the range."""
        if "log" in raw:
            log = raw["log"]
            if entry.type == "enum":
                raise self.error((*where, "log"), "'log' is for float and int ranges, not enum choices")
            if not isinstance(log, bool):
                raise self.error((*where, "log"), f"'log' takes true or false, got {_json(log)}")
            if log and entry.low <= 0:
                raise self.error((*where, "targets", 0), f"a log-scale range needs min > 0, got [{entry.low}, "
                                 f"{entry.high}]; e.g. [1e-5, 1e-2]")
            entry.log = log
        if "step" in raw:
            step = raw["step"]
            if entry.type != "int":
                raise self.error((*where, "step"), f"'step' is for int ranges, not {entry.type}; use type 'int' "
                                 "or an enum of the values you want")
            if not _is_int(step) or step <= 0:
                raise self.error((*where, "step"), f"'step' must be a positive integer, got {_json(step)}")
            if entry.log and step != 1:
                raise self.error((*where, "step"), f"'step' {step} cannot go with 'log': true (log-scale ints "
                                 "take every integer); drop one")
            entry.step = step

    def _args(self, path: JsonPathParts, node: dict[str, Any], raw: Any, where: JsonPathParts) -> list[_Arg]:
        if isinstance(raw, str):
            raw, items = [raw], [(where, raw)]                 # a bare string is one arg
        elif isinstance(raw, list):
            if not raw:
                raise self.error(where, "args is empty: name at least one arg to search")
            items = [((*where, i), text) for i, text in enumerate(raw)]
        else:
            raise self.error(where, f"args must be a list of arg names (or one name), got {_kind(raw)}")
        out: list[_Arg] = []
        seen: dict[str, JsonPathParts] = {}
        for at, text in items:
            if not isinstance(text, str) or not text.strip():
                raise self.error(at, f"an arg must be a non-empty name, got {_json(text)}")
            if self.dialect.ids:
                text = mk.bundle_id(text)
            if path:
                arg = self._component_arg(path, node, text, at)
            elif self.dialect.ids and mk.BUNDLE_ID_SEP in text.lstrip(mk.VAR_PREFIX):
                arg = self._id_arg(text, at)
            else:
                arg = self._top_arg(text, at)
            key = (arg.component, arg.target) if arg.target else (arg.variable or text)
            if key in seen:
                shown = key[1] if isinstance(key, tuple) else key
                raise self.error(at, f"{shown!r} is listed twice in args (first at {format_json_path(seen[key])})")
            seen[key] = at
            out.append(arg)
        return out

    def _component_arg(self, path: JsonPathParts, node: dict[str, Any], text: str, at: JsonPathParts) -> _Arg:
        name, alias = mk.split_alias(text)
        self._check_alias(text, alias, at)
        if mk.is_disabled_arg(name):
            return _Arg(text, DISABLED_ARG, alias, at)
        if name.startswith(mk.VAR_PREFIX):
            raise self.error(at, f"{text!r}: only '@disabled' may start with '@' in a component"
                             f"{did_you_mean(name, [DISABLED_ARG])}; free variables such as '@myVar' belong in the "
                             "top-level search")
        self._require_arg(path, node, name, at, "search")
        return _Arg(text, name, alias, at)

    def _check_alias(self, text: str, alias: str | None, at: JsonPathParts) -> None:
        if alias is None:
            return
        if not mk.is_variable_name(alias):
            raise self.error(at, f"alias {alias!r} in {text!r} is not a valid name: use letters, digits and _ "
                             "after '#', e.g. 'probability#myProb'")
        if alias in self.config:
            # MLflow params and tables would show the value under the name of a config key it does not set.
            raise self.error(at, f"alias {alias!r} in {text!r} is also a first-level key of the config: "
                             "choose another name")

    def _id_arg(self, text: str, at: JsonPathParts) -> _Arg:
        """A bundle id ``a#b#c`` (the arg ``c`` of the object at ``a#b``), optionally ``a#b#c#alias``: the
        longest prefix of the id that exists in the config is the id; one more word after a value (not
        after an object, where it would be a misspelt key) is the alias."""
        parts = text.split(mk.BUNDLE_ID_SEP)
        node: Any = self.config
        found: list[str | int] = []
        for part in parts:
            step = _child(node, part)
            if step is None:
                break
            found.append(step[0])
            node = step[1]
        rest = parts[len(found):]
        if not found:
            keys = [k for k in self.config if k not in (mk.SEARCH_KEY, mk.LEGACY_LR_KEY)]
            raise self.error(at, f"{text!r}: the bundle has no id {parts[0]!r}{did_you_mean(parts[0], keys)}")
        alias = None
        if len(rest) == 1 and not isinstance(node, dict) and len(found) > 0 and not rest[0].isdigit():
            alias = rest.pop()
        if rest:
            parent = mk.BUNDLE_ID_SEP.join(str(p) for p in found)
            missing = f"{parent}{mk.BUNDLE_ID_SEP}{rest[0]}"
            options = ([f"{parent}{mk.BUNDLE_ID_SEP}{k}" for k in node] if isinstance(node, dict)
                       else [f"{parent}{mk.BUNDLE_ID_SEP}{i}" for i in range(len(node))] if isinstance(node, list) else [])
            hint = did_you_mean(missing, options)
            what = ("an object" if isinstance(node, dict) else f"a list of {len(node)}" if isinstance(node, list)
                    else f"the value {_json(node)}")
            if isinstance(node, dict) and not hint:   # no near spelling ('optimizer#learning_rate'): its keys
                keys = [str(k) for k in node if k != mk.SEARCH_KEY]
                what += f" with keys {', '.join(keys[:12])}{', ...' if len(keys) > 12 else ''}"
            raise self.error(at, f"{text!r}: the bundle has no id {missing!r}{hint} ({parent!r} is {what})")
        if len(found) == 1:                   # a first-level key, as in Clara ("learning_rate")
            return self._top_arg(text if alias is None else f"{found[0]}{mk.ALIAS_SEP}{alias}", at)
        if isinstance(found[-1], int):
            raise self.error(at, f"{text!r} names a list item: search the whole list "
                             f"({mk.BUNDLE_ID_SEP.join(str(p) for p in found[:-1])!r}) or a key of that item")
        if alias is not None:
            self._check_alias(text, alias, at)
        return _Arg(text, str(found[-1]), alias, at, tuple(found[:-1]))

    def _top_arg(self, text: str, at: JsonPathParts) -> _Arg:
        name, alias = mk.split_alias(text)
        bare = name[len(mk.VAR_PREFIX):] if name.startswith(mk.VAR_PREFIX) else name
        if mk.is_disabled_arg(name):
            raise self.error(at, "'@disabled' needs a component: search it inside the component, or name a "
                             "free variable here and use \"apply\": {\"@disabled\": \"myVar\"} in the component")
        if bare in self.config and bare not in (mk.SEARCH_KEY, mk.LEGACY_LR_KEY):
            if alias != bare:
                self._check_alias(text, alias, at)
            return _Arg(text, bare, alias or bare, at)
        if alias is not None:
            raise self.error(at, f"{text!r}: {bare!r} is a free variable (not a first-level key), which is "
                             f"already a name; drop '#{alias}'")
        if not mk.is_variable_name(bare):
            raise self.error(at, f"{text!r} is neither a first-level key of the config nor a valid variable "
                             "name (letters, digits and _)")
        return _Arg(text, None, bare, at)

    def _require_arg(self, path: JsonPathParts, node: dict[str, Any], arg: str, at: JsonPathParts, verb: str) -> None:
        comp = format_json_path(path)
        if self.dialect.args_key is None:     # a bundle: the component's own keys are its args
            args = self.dialect.args_of(node) or {}
            if arg not in args:
                known = ", ".join(args) or "none"
                raise self.error(at, f"{arg!r} is not a key of {comp}{did_you_mean(arg, args)}; its keys are: {known} "
                                 f"(to {verb} {arg!r}, add it to {comp} with its default value)")
            return
        args = node.get("args")
        if arg == mk.DISABLED_KEY and not (isinstance(args, dict) and arg in args):
            raise self.error(at, f"'disabled' is the component's attribute, not an arg: write '{DISABLED_ARG}' "
                             "(with the '@')")
        if not isinstance(args, dict) and _is_section(path, node):
            raise self.error(at, f"cannot {verb} {arg!r}: {comp} is a section, not a component (no name, path or "
                             "args); to search a first-level key, put the entry in the top-level \"search\"")
        if not isinstance(args, dict):
            raise self.error(at, f"cannot {verb} {arg!r}: {comp} has no 'args' object; add \"args\": "
                             f"{{\"{arg}\": ...}} or search '@disabled'")
        if arg not in args:
            known = ", ".join(args) or "none"
            raise self.error(at, f"{arg!r} is not an arg of {comp}{did_you_mean(arg, args)}; its args are: {known} "
                             f"(to {verb} {arg!r}, add it to {comp}.args with its default value)")

    def _range_targets(self, entry: _Entry, raw: Any, where: JsonPathParts) -> None:
        for arg in entry.args:
            if arg.target == DISABLED_ARG:
                raise self.error(arg.where, "'@disabled' is true or false: search it with type 'enum' and "
                                 "targets [[true], [false]]")
        entry.low, entry.high = self._range(raw, where, entry.type)

    def _range(self, raw: Any, where: JsonPathParts, type_: str = "float") -> tuple[float, float]:
        if not isinstance(raw, list) or len(raw) != 2:
            got = f"{len(raw)} values" if isinstance(raw, list) else _kind(raw)
            raise self.error(where, f"a{'n' if type_ == 'int' else ''} {type_} range needs exactly [min, max], "
                             f"got {got}")
        for i, value in enumerate(raw):
            if type_ == "int" and not _is_int(value):
                whole = _is_number(value) and _is_finite(value) and value == int(value)
                hint = f" (write {int(value)})" if whole else ""
                raise self.error((*where, i), f"an int range needs integers, got {_json(value)}{hint}")
            if not _is_number(value):
                raise self.error((*where, i), f"a float range needs numbers, got {_json(value)}")
            if not _is_finite(value):
                raise self.error((*where, i), f"a float range needs finite numbers, got {_json(value)}")
        low, high = raw
        if low > high:
            raise self.error(where, f"a{'n' if type_ == 'int' else ''} {type_} range needs min <= max, "
                             f"got [{low}, {high}]")
        return low, high

    def _enum_targets(self, entry: _Entry, raw: Any, where: JsonPathParts) -> None:
        n = len(entry.args)
        if not isinstance(raw, list):
            raise self.error(where, f"enum targets must be a list of choices, each a list of {n} value(s), got {_kind(raw)}")
        if not raw:
            raise self.error(where, "enum targets are empty: give at least one choice, e.g. [[1], [2]]")
        choices: list[tuple[Any, ...]] = []
        seen: dict[str, int] = {}
        for k, choice in enumerate(raw):
            at = (*where, k)
            if not isinstance(choice, list):
                raise self.error(at, f"each enum choice must be a list with one value per arg ({n}), got {_json(choice)}; "
                                 f"e.g. [[5000], [1000]]")
            if len(choice) != n:
                hint = (" (a list-valued arg needs one more level of nesting, e.g. [[[16, 32, 64]], [[8, 16, 32]]])"
                        if n == 1 else "")
                raise self.error(at, f"choice has {len(choice)} value(s) but args has {n} "
                                 f"({', '.join(a.text for a in entry.args)}){hint}")
            key = canonical_choice(choice)
            if key in seen:
                raise self.error(at, f"choice repeats choice {seen[key]}: each choice must differ")
            seen[key] = k
            choices.append(tuple(choice))
        entry.choices = tuple(choices)
        for i, arg in enumerate(entry.args):
            if arg.target == DISABLED_ARG:
                self._require_bools(entry, i, where, "'@disabled'")

    def _require_bools(self, entry: _Entry, i: int, where: JsonPathParts, what: str) -> None:
        for k, value in enumerate(entry.value_at(i)):
            if not isinstance(value, bool):
                raise self.error((*where, k, i), f"{what} takes true or false, got {_json(value)}")

    def _legacy_lr(self, raw: Any) -> None:
        where: JsonPathParts = (mk.LEGACY_LR_KEY,)
        low, high = self._range(raw, where)
        entry = _Entry((), None, 0, where, "lr", "float",
                       [_Arg(mk.LEGACY_LR_ARG, mk.LEGACY_LR_ARG, mk.LEGACY_LR_ARG, where)], low, high)
        entry.prl = f"lr.float.{mk.LEGACY_LR_KEY}$0:{mk.LEGACY_LR_ARG}"
        self.entries.append(entry)

    # -- pass 2: variables, apply, consumers -------------------------------------------------------
    def _variables(self) -> dict[str, tuple[_Entry, int]]:
        out: dict[str, tuple[_Entry, int]] = {}
        for entry in self.entries:
            for i, arg in enumerate(entry.args):
                if arg.variable is not None:
                    if arg.variable in out:
                        first = out[arg.variable][0].args[out[arg.variable][1]]
                        if first.target == arg.target == arg.variable:      # e.g. lr_search and a search of learning_rate
                            raise self.error(arg.where, f"first-level key {arg.variable!r} is already searched at "
                                             f"{format_json_path(first.where)}: search each key once")
                        raise self.error(arg.where, f"{arg.variable!r} is already defined at "
                                         f"{format_json_path(first.where)}: aliases and free variables must be unique")
                    out[arg.variable] = (entry, i)
                if arg.target is not None:
                    component = entry.component if arg.component is None else arg.component
                    entry.consumers.append(Consumer(component, arg.target, self._index(entry, i)))
                    entry.consumer_where.append(arg.where)
        return out

    @staticmethod
    def _index(entry: _Entry, i: int) -> int:
        return i if entry.type == "enum" else 0        # a float's or int's one value goes to every arg

    def _link_applies(self, variables: dict[str, tuple[_Entry, int]]) -> None:
        for path, node in self.applies:
            where = (*path, mk.APPLY_KEY)
            apply = node[mk.APPLY_KEY]
            if not isinstance(apply, dict) or not apply:
                raise self.error(where, "'apply' must be a non-empty object {\"arg\": \"variable\"}, "
                                 f"e.g. {{\"@disabled\": \"myVar\"}}, got {_json(apply)}")
            for arg, ref in apply.items():
                at = (*where, arg)
                if not isinstance(ref, str) or not ref:
                    raise self.error(at, f"apply needs a variable name (a string), got {_json(ref)}")
                name = ref[len(mk.VAR_PREFIX):] if ref.startswith(mk.VAR_PREFIX) else ref
                if name not in variables:
                    raise self.error(at, self._undefined_variable(ref, name, variables))
                entry, i = variables[name]
                if mk.is_disabled_arg(arg):
                    if entry.type != "enum":
                        article = "an" if entry.type == "int" else "a"
                        raise self.error(at, f"'@disabled' takes true or false but {name!r} is {article} "
                                         f"{entry.type} range; use an enum variable with targets [[true], [false]]")
                    self._require_bools(entry, i, (*entry.where, "targets"), f"{name!r} applied to '@disabled'")
                elif arg.startswith(mk.VAR_PREFIX):
                    raise self.error(at, f"{arg!r}: only '@disabled' may start with '@' in apply"
                                     f"{did_you_mean(arg, [DISABLED_ARG])}")
                else:
                    self._require_arg(path, node, arg, at, "apply to")
                entry.consumers.append(Consumer(path, arg, self._index(entry, i)))
                entry.consumer_where.append(at)
                self.used.add(name)

    def _undefined_variable(self, ref: str, name: str, variables: dict[str, tuple[_Entry, int]]) -> str:
        """Why ``apply`` cannot use ``ref``; when it is an arg searched without a name (``prob`` or
        ``RandFlipd.prob``), say how to name it, since that is the usual mistake."""
        for entry in self.entries:
            for arg in entry.args:
                if arg.variable is None and arg.target is not None and name in (arg.target, f"{entry.label}.{arg.target}"):
                    return (f"apply names {ref!r}, but {format_json_path(arg.where)} searches {arg.target!r} without "
                            f"a name: write '{arg.target}#myName' there and apply 'myName'")
        known = ", ".join(sorted(variables)) or "none (define one in a search: '@myVar' at the top level or 'arg#alias')"
        return f"apply names {ref!r}, which no search defines{did_you_mean(name, variables)}; defined: {known}"

    def _check_consumers(self, variables: dict[str, tuple[_Entry, int]]) -> None:
        written: dict[tuple[JsonPathParts, str], JsonPathParts] = {}
        for entry in self.entries:
            for c, at in zip(entry.consumers, entry.consumer_where):
                key = (c.component, c.arg)
                if key in written:
                    place = f"{format_json_path(c.component)}.{c.arg}" if c.component else c.arg
                    raise self.error(at, f"{place} is already searched at {format_json_path(written[key])}: "
                                     "one place takes one dimension")
                written[key] = at
        for name, (entry, i) in variables.items():
            if entry.args[i].target is None and name not in self.used:
                keys = [k for k in self.config if k not in (mk.SEARCH_KEY, mk.LEGACY_LR_KEY)]
                raise self.error(entry.args[i].where, f"free variable {name!r} is not a first-level key"
                                 f"{did_you_mean(name, keys)} and no \"apply\" uses it (a typo?): add "
                                 f"\"apply\": {{\"arg\": \"{name}\"}} to a component")

    # -- pass 3: names and value classes -----------------------------------------------------------
    def _build(self) -> SearchSpace:
        names = readable_names([self._name_request(e) for e in self.entries])
        dims: list[Dimension] = []
        for entry, name in zip(self.entries, names):
            args = tuple(a.text for a in entry.args)
            try:
                if entry.type == "float":
                    dims.append(FloatDimension(entry.prl, name, entry.domain, args, entry.low, entry.high,
                                               tuple(entry.consumers), log=entry.log))
                elif entry.type == "int":
                    dims.append(IntDimension(entry.prl, name, entry.domain, args, int(entry.low), int(entry.high),
                                             tuple(entry.consumers), step=entry.step, log=entry.log))
                else:
                    dims.append(EnumDimension(entry.prl, name, entry.domain, args, entry.choices,
                                              tuple(entry.consumers)))
            except ValueError as err:       # the checks above should make this unreachable
                raise self.error(entry.where, str(err)) from None
        try:
            return SearchSpace(tuple(dims))
        except ValueError as err:
            raise ConfigError(self.file, mk.SEARCH_KEY, str(err)) from None


    def _name_request(self, entry: _Entry) -> tuple[JsonPathParts, str | None, str | None, list[str]]:
        """What names.readable_names needs. Bundle ids in the search file are named like inline entries
        of the component they write (``optimizer.lr``, ``RandFlipd.prob``); ids into several components,
        by the ids themselves with '.' for '#' (MLflow param names take no '#')."""
        targets = [a.target or a.text for a in entry.args]
        homes = {a.component for a in entry.args if a.component is not None}
        if not homes:
            return entry.component, entry.label, _fixed_name(entry), targets
        if len(homes) == 1 and all(a.component is not None and a.variable is None for a in entry.args):
            home = next(iter(homes))
            return home, _component_label(home, _at(self.config, home)), None, targets
        fixed = ",".join(a.variable or ".".join(str(p) for p in (*(a.component or ()), a.target or a.text))
                         for a in entry.args)
        return entry.component, entry.label, fixed, targets


def _child(node: Any, part: str) -> tuple[str | int, Any] | None:
    """One step of a bundle id: a key of an object or an index of a list; None when there is none."""
    if isinstance(node, dict) and part in node and part not in (mk.SEARCH_KEY, mk.APPLY_KEY):
        return part, node[part]
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return int(part), node[int(part)]
    return None


def _at(config: Any, path: JsonPathParts) -> Any:
    for part in path:
        config = config[part]
    return config


def _fixed_name(entry: _Entry) -> str | None:
    """The readable name when every arg has a variable name (alias, free variable, first-level key)."""
    if all(a.variable for a in entry.args):
        return ",".join(a.variable for a in entry.args if a.variable)
    return None


def _is_section(path: JsonPathParts, node: dict[str, Any]) -> bool:
    """``train`` or ``validate``: a first-level object that is not itself a component."""
    return len(path) == 1 and not any(k in node for k in ("name", "path", "ref", "args"))


def _component_label(path: JsonPathParts, node: dict[str, Any]) -> str | None:
    if not path:
        return None
    if isinstance(path[-1], str):
        return path[-1]
    return mk.component_label(node)


def _prl(entry: _Entry, args: list[str]) -> str:
    where = format_json_path(entry.component) if entry.component else ""
    return f"{entry.domain}.{entry.type}.{where}${entry.index}:{','.join(args)}"


def _is_finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:              # an int too large for a float (e.g. 1 followed by 400 zeros)
        return False


def _json(value: Any) -> str:
    """A value from the config in JSON words (true, null, [1, 2]); a string quoted like the names in our
    messages ('0.1'), so that a number written as a string shows; cut to 40 characters."""
    try:
        text = repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):    # not from a JSON file (Python API): show it as Python does
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number") if not isinstance(value, str) else f"the string {value!r}"


def _keys_text() -> str:
    return ", ".join(f"'{k}'" for k in mk.ENTRY_KEYS)

