"""Checks on user data that make a message name what to fix: the first bad line of a local file (with the parser's
reason), and labels that cannot train a classifier (one label only, or labels the training split never shows).

Example:

```python
>>> from hf_rnn.data_checks import first_bad_line
>>> first_bad_line("reviews.csv")  # None when every row parses
'reviews.csv:3: 3 fields where the header has 2; quote fields that hold commas ("a, b").'
```
"""

import csv
import json
import logging
from collections import Counter
from pathlib import Path

from datasets import DatasetDict

logger = logging.getLogger(__name__)


def first_bad_line(path: str | Path) -> str | None:
    """`<path>:<line>: <reason>` for the first line of a .csv, .jsonl or .json file that its parser rejects, or None
    when the file parses (or is of another kind)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return _first_bad_csv_row(path)
        if suffix == ".jsonl":
            return _first_bad_json_line(path)
        if suffix == ".json":
            return _bad_json_document(path)
    except (OSError, UnicodeDecodeError):  # reported by the caller's own checks
        return None
    return None


def _first_bad_csv_row(path: Path) -> str | None:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                return None
            for row in reader:
                if row and len(row) != len(header):
                    extra = len(row) > len(header)
                    fix = 'quote fields that hold commas ("a, b")' if extra else "fill the missing fields"
                    return f"{path}:{reader.line_num}: {len(row)} fields where the header has {len(header)}; {fix}."
        except csv.Error as error:
            return f"{path}:{reader.line_num}: {error}; check the quoting on that line."
    return None


def _first_bad_json_line(path: Path) -> str | None:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as error:
                return (
                    f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno}); fix or remove the line."
                )
            if not isinstance(value, dict):
                return (
                    f"{path}:{number}: a JSON {type(value).__name__}, not an object; each line of a .jsonl file is "
                    'one row such as {"text": "...", "label": "..."}.'
                )
    return None


def _bad_json_document(path: Path) -> str | None:
    text = path.read_text(encoding="utf-8")
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data":  # JSON lines in a .json file: datasets reads those too
            return _first_bad_json_line(path)
        return f"{path}:{error.lineno}: not valid JSON ({error.msg} at column {error.colno})."
    return None


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception of a chain (the builders wrap the parser's error in DatasetGenerationError)."""
    seen = {id(error)}
    while (inner := error.__cause__ or error.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        error = inner
    return error


def check_training_labels(splits: DatasetDict, label_names: list[str], where: str) -> None:
    """Refuses training data with a single label (a "classifier" that is always right), and warns about labels
    that only the validation or test split holds (the model never sees them in training).

    Raises:
        `ValueError`: the training split holds fewer than two labels.
    """
    counts = {name: Counter(split["label"][:]) for name, split in splits.items()}
    train = counts["train"]
    if len(train) < 2:
        only = ", ".join(repr(label_names[i]) for i in train) or "none"
        raise ValueError(
            f"The training split of {where} holds one label only ({only}, {sum(train.values())} rows); a classifier "
            "needs at least two. Check data.label_column, or use more data (data.max_train_samples)."
        )
    for name in ("validation", "test"):
        unseen = sorted(set(counts.get(name, {})) - set(train))
        if unseen:
            rows = ", ".join(f"{label_names[i]!r} ({counts[name][i]} rows)" for i in unseen)
            logger.warning(
                "Labels %s of the %s split never appear in the training split of %s: the model cannot learn them. "
                "Use more training data (data.max_train_samples) or drop those rows.",
                rows,
                name,
                where,
            )
