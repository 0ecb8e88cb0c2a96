"""Reading recipe YAML with positions: every key's `file:line` (or `--set KEY`), `extends` chains, `--set` overrides,
duplicate keys refused, YAML 1.2 booleans. `hf_rnn.recipes` validates what this module reads.
"""

import difflib
import re
from pathlib import Path

import yaml

from .utils import package_data_dir

CONFIGS_DIR = package_data_dir("configs")
RECIPES_DIR = CONFIGS_DIR / "recipes"
MODELS_DIR = CONFIGS_DIR / "models"


class RecipeError(ValueError):
    """A recipe (file, `--set` override or dict) is invalid; the message names where and how to fix it."""


# --- reading YAML with positions ------------------------------------------------------------------------------


class _Where:
    """Where each key of a merged recipe came from: `path tuple -> "file:line"`."""

    def __init__(self):
        self.places: dict[tuple[str, ...], str] = {}

    def of(self, path: tuple[str, ...]) -> str:
        while path and path not in self.places:
            path = path[:-1]
        return self.places.get(path, "recipe")


class _RecipeLoader(yaml.SafeLoader):
    """The safe loader with YAML 1.2 booleans: only `true` / `false` are booleans. YAML 1.1 also reads `yes`, `no`,
    `on` and `off` as booleans, which turns `language: no` (Norwegian) and `eval_strategy: no` into `False`; here they
    stay strings, and a boolean field accepts them (see `_coerce`)."""


_RecipeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_YAML11_BOOLEANS = {"yes": True, "on": True, "no": False, "off": False}


def _yaml_error(error: yaml.YAMLError, place: str) -> RecipeError:
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        place = f"{place}:{mark.line + 1}:{mark.column + 1}"
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return RecipeError(f"{place}: YAML syntax error: {problem}.")


def _read_yaml(path: Path, where: _Where, prefix: tuple[str, ...] = ()) -> dict:
    """Safe-loads a YAML mapping and records the line of every key; a duplicate key is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: file not found.") from None
    except UnicodeDecodeError as error:
        raise RecipeError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8."
        ) from None
    except OSError as error:
        raise RecipeError(f"{path}: cannot read it ({error.strerror or error}).") from None
    try:
        node = yaml.compose(text, Loader=_RecipeLoader)
        _check_duplicate_keys(node, path)
        data = yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        raise _yaml_error(error, str(path)) from None
    if data is None or data == {}:
        what = "model file" if prefix else "recipe"
        start = "a cell `type:` and its sizes" if prefix else "`extends: quickstart` or a `data:` and `model:` section"
        raise RecipeError(
            f"{path}: the {what} is empty, and would run with every default; write what it means, e.g. {start}."
        )
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a YAML mapping of sections, got {type(data).__name__}.")

    def walk(node: yaml.Node, keys: tuple[str, ...]):
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                sub = (*keys, str(key_node.value))
                where.places[sub] = f"{path}:{key_node.start_mark.line + 1}"
                walk(value_node, sub)

    walk(node, prefix)
    return data


# nodes a recipe may expand to through YAML aliases (a "billion laughs" file expands to billions)
_MAX_YAML_NODES = 100_000


def _check_duplicate_keys(root: yaml.Node | None, path: Path) -> None:
    """Refuses a key given twice in one mapping (a key or a whole section), which YAML would resolve silently by
    keeping the last, and aliases that make a recipe recursive or explode in size."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in visiting:
            raise RecipeError(
                f"{path}:{node.start_mark.line + 1}: a YAML alias refers to a mapping or list that holds it; a "
                "recipe cannot be recursive."
            )
        visiting.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if isinstance(key_node, yaml.ScalarNode) and key_node.value in first_line:
                    raise RecipeError(
                        f"{path}:{line}: duplicate key {key_node.value!r} (first at line "
                        f"{first_line[key_node.value]}); YAML would keep only the last one, so merge them into one."
                    )
                if isinstance(key_node, yaml.ScalarNode):
                    first_line[key_node.value] = line
                total += size(key_node) + size(value_node)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        if total > _MAX_YAML_NODES:
            raise RecipeError(
                f"{path}: the YAML aliases expand to more than {_MAX_YAML_NODES:,} values; write it out."
            )
        visiting.discard(id(node))
        sizes[id(node)] = total
        return total

    if root is not None:
        size(root)


def _merge(base: dict, override: dict) -> dict:
    """Deep merge: mappings merge key by key, anything else in `override` replaces the base value."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve_file(name: str, folder: Path, relative_to: Path | None, kind: str) -> Path:
    """A recipe or model file given as a path (absolute, or relative to the including file or cwd) or a zoo name."""
    stem = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
    candidates = [Path(name)]
    if relative_to is not None:
        # `extends: my_base` finds my_base.yaml beside the file that names it
        candidates[:0] = [relative_to.parent / name, relative_to.parent / stem]
    candidates.append(folder / stem)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    available = sorted(p.stem for p in folder.glob("*.yaml"))
    close = difflib.get_close_matches(Path(name).stem, available, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise RecipeError(f"{kind} {name!r} not found as a file or in {folder}.{hint} Available: {', '.join(available)}.")


def _load_with_extends(path: Path, where: _Where, chain: tuple[Path, ...] = ()) -> dict:
    if path in chain:
        cycle = " -> ".join(p.name for p in (*chain, path))
        raise RecipeError(f"{path}: extends cycle: {cycle}.")
    data = _read_yaml(path, where)
    if isinstance(data.get("model"), str):
        # `model: bilstm` is short for `model: {base: bilstm}`, so a child or --set can change single fields
        data["model"] = {"base": data["model"]}
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise RecipeError(f"{where.of(('extends',))}: extends must be a recipe name or path, got {parent!r}.")
    parent_path = _resolve_file(parent, RECIPES_DIR, path, "extends: recipe")
    parent_where = _Where()
    base = _load_with_extends(parent_path, parent_where, (*chain, path))
    # keys set in this file keep this file's positions; inherited ones point at the parent
    where.places = {**parent_where.places, **where.places}
    return _merge(base, data)


def _apply_override(data: dict, override: str, where: _Where) -> dict:
    """Applies one `--set section.key=value` (the value is parsed as YAML: numbers, booleans, lists)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"--set {override!r}: expected section.key=value, e.g. training.learning_rate=3e-4.")
    try:
        override.encode("utf-8")
    except UnicodeEncodeError:
        raise RecipeError(f"--set {ascii(override)}: not UTF-8; pass the value as UTF-8 text.") from None
    path = tuple(part.strip() for part in key.split("."))
    if not all(path):
        raise RecipeError(f"--set {override!r}: empty key part; expected section.key=value, e.g. training.seed=1.")
    try:
        value = yaml.load(raw, Loader=_RecipeLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        value = raw
    node = data
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value
    where.places[path] = f"--set {key}"
    return data
