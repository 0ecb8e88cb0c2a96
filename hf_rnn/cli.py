"""The `hf-rnn` command: a thin layer over functions Python users can call too.

    hf-rnn list                                  models, recipes and embedded datasets in the zoo
    hf-rnn train [RECIPE] [--set KEY=VALUE ...]  train, evaluate and save (default: the quickstart recipe)
    hf-rnn eval MODEL_DIR [--data DATASET]       test-set metrics of a saved model (or its perplexity)
    hf-rnn predict MODEL_DIR [TEXT ...] [--file F] [--output OUT] [--backend torch|onnx]
    hf-rnn generate MODEL_DIR --prompt TEXT      continue a text with a language model (sampling or beams)
    hf-rnn export MODEL_DIR OUT [--format onnx|exported-program] [--quantize int8]
    hf-rnn summary MODEL                         Keras-style layer table with parameter counts
    hf-rnn card MODEL_DIR                        (re)write the model card
    hf-rnn push MODEL_DIR REPO_ID [--private] [--revision R]
    hf-rnn bench [--quick]                       tokens/s against plain PyTorch and Keras
    hf-rnn bench --deploy [--model-dir DIR]      inference: PyTorch fp32/bf16/int8 vs onnxruntime fp32/int8
    hf-rnn reproduce RECIPE ...|--all            train recipes with fixed seeds, write RESULTS.md and results.json
    hf-rnn search RECIPE --trials N              hyperparameter search over the recipe's search: section (optuna)
    hf-rnn bench --generate [--quick]            generation tokens/s with the recurrent cache vs without

Errors a user can cause print one line and exit 2 (bad usage, recipe or input) or 1 (a failure while running);
set HF_RNN_DEBUG=1 to see the traceback.
"""

import argparse
import csv
import errno
import itertools
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from huggingface_hub.errors import StrictDataclassError

from .utils import one_line

# errors caused by what the user gave (a recipe, an argument, a file): exit code 2. RecipeError is a ValueError;
# `hf_rnn.recipes` is imported by the commands that use it, so that `hf-rnn predict --backend onnx` runs without torch
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, StrictDataclassError, UnicodeDecodeError)
# OS errors on a path the user gave (a missing file, a folder given for a file, a read-only output): exit code 2
USER_OS_ERRORS = (IsADirectoryError, NotADirectoryError, PermissionError)
_USER_ERRNOS = (errno.EROFS, errno.ENAMETOOLONG, errno.ELOOP)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


PICKLE_HELP = "load pickled .bin weights (with torch.load weights_only=True) when no safetensors file exists"
BF16_HELP = (
    "run the model under bf16 autocast: about 1.5x faster on CPUs with native bf16 (AVX512-BF16, AMX) and on recent "
    "GPUs; scores differ from fp32 in the second or third decimal"
)


def _cmd_list(args: argparse.Namespace) -> int:
    from .data import EMBEDDED_DATASETS
    from .recipes import list_models, list_recipes, recipe_description
    from .registry import model_description

    print("Models (configs/models):")
    for name in list_models():
        print(f"  {name:28} {model_description(name)}")
    print("Recipes (configs/recipes):")
    for name in list_recipes():
        print(f"  {name:28} {recipe_description(name)}{_network_note(name)}")
    print("Embedded datasets (offline):")
    for name, entry in EMBEDDED_DATASETS.items():
        print(f"  {name:28} {entry.description}")
    return 0


def _network_note(name: str) -> str:
    """` [needs the network: ...]` for a recipe that reads from the Hub (see recipes.network_sources)."""
    from .recipes import RecipeError, load_recipe, network_sources

    try:
        sources = network_sources(load_recipe(name))
    except RecipeError:
        return ""
    return f" [needs the network: {'; '.join(sources)}]" if sources else ""


def _cmd_train(args: argparse.Namespace) -> int:
    from .recipes import load_recipe
    from .training import train

    recipe = load_recipe(args.recipe, overrides=args.set)
    result = train(recipe, output_dir=args.output_dir, overwrite=args.overwrite)
    print(f"Model saved to {result.output_dir.resolve()}")
    print("Test metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from .data import DataSpec
    from .model_dir import is_language_model, read_config
    from .training import evaluate_model

    if args.label_column is not None and is_language_model(read_config(args.model_dir)):
        raise ValueError(
            "--label-column: a language model is scored on the texts alone (next-token loss); drop the option."
        )
    data = None
    if args.data:
        columns = {"text_column": args.text_column}
        if args.label_column is not None:
            columns["label_column"] = args.label_column
        # a data file is evaluated whole; a dataset name keeps its usual test split
        whole = {"validation_split": "train", "test_split": "train"} if Path(args.data).is_file() else {}
        data = DataSpec(dataset=args.data, **columns, **whole)
    metrics = evaluate_model(
        args.model_dir, data=data, split=args.split, allow_pickle=args.allow_pickle, bf16=args.bf16
    )
    print(json.dumps(metrics, indent=2))
    return 0


def _read_lines(path: str) -> Iterator[str]:
    """Lines of a UTF-8 text file (or stdin for `-`), streamed; a bad byte is an error naming its line and column.

    Lines are read as bytes and decoded one by one, so the line number is exact (a text stream decodes in chunks).
    """
    if path == "-" and sys.stdin is None:
        raise ValueError("stdin is closed, so there are no texts to read; give texts as arguments or --file.")
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    try:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{'stdin' if path == '-' else path}: line {number} is not UTF-8 ({error.reason} at byte "
                    f"{error.start + 1} of the line); re-encode it as UTF-8, e.g. `iconv -f latin1 -t utf-8`."
                ) from None
            yield line.rstrip("\r\n")
    finally:
        if path != "-":
            stream.close()


def _check_utf8(texts: list[str], what: str) -> None:
    """Command-line arguments that are not UTF-8 reach Python with surrogate escapes, which no output can print."""
    for number, text in enumerate(texts, start=1):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"{what} {number} is not UTF-8 (a byte at position {error.start + 1} is not); pass UTF-8 text, or put "
                "the texts in a UTF-8 file and use --file."
            ) from None


def _same_file(a: Path | int, b: Path) -> bool:
    try:
        first = os.fstat(a) if isinstance(a, int) else a.stat()
        second = b.stat()
    except (OSError, ValueError):
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def _check_output_is_no_input(output: Path, args: argparse.Namespace) -> None:
    """Opening --output truncates it: refuse when it is the texts' file, stdin, or a file of the model directory."""
    inputs = []
    if args.file not in (None, "-"):
        inputs.append((Path(args.file), f"the --file {args.file}"))
    elif not args.texts and sys.stdin is not None:
        try:
            inputs.append((sys.stdin.fileno(), "the file stdin reads"))
        except (OSError, ValueError):  # stdin replaced by something without a file descriptor
            pass
    model_dir = Path(args.model_dir)
    if model_dir.is_dir():
        inputs.extend((path, f"a file of the model directory {model_dir}") for path in model_dir.iterdir())
    for source, name in inputs:
        if _same_file(source, output):
            raise ValueError(
                f"--output {output} is {name}; writing it would erase what is read. Choose another --output file."
            )


def _cmd_predict(args: argparse.Namespace) -> int:
    from .inference import iter_predict

    if args.texts and args.file:
        raise ValueError("give texts or --file, not both.")
    _check_utf8(args.texts, "text argument")
    output = Path(args.output) if args.output is not None else None
    if output is not None:
        _check_output_is_no_input(output, args)
    texts = args.texts or _read_lines(args.file or "-")
    results = iter_predict(
        args.model_dir,
        texts,
        batch_size=args.batch_size,
        backend=args.backend,
        allow_pickle=args.allow_pickle,
        bf16=args.bf16,
    )
    if output is None:
        for result in results:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        return 0
    # the model loads and the first batch is labelled before the output is opened: an error leaves it untouched
    first = next(results, None)
    results = itertools.chain([first] if first is not None else [], results)
    with output.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, ["text", "label", "score"]) if output.suffix == ".csv" else None
        if writer is not None:
            writer.writeheader()
        for count, result in enumerate(results, start=1):
            if writer is not None:
                writer.writerow(result)
            else:
                handle.write(json.dumps(result, ensure_ascii=False) + "\n")
            # written as it goes, so an interrupted run keeps every finished batch
            if count % args.batch_size == 0:
                handle.flush()
    print(f"Predictions written to {output}", file=sys.stderr)
    return 0


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def _cmd_generate(args: argparse.Namespace) -> int:
    from .language_modeling import generate_text, load_language_model

    searching = args.greedy or args.num_beams > 1
    sampling_options = [
        flag
        for flag, value in (("--temperature", args.temperature), ("--top-k", args.top_k), ("--top-p", args.top_p))
        if value is not None
    ]
    if searching and sampling_options:
        mode = "--greedy" if args.greedy else "--num-beams > 1"
        raise ValueError(f"{', '.join(sampling_options)}: sampling options, not for {mode}; drop one or the other.")
    model, tokenizer = load_language_model(args.model_dir, allow_pickle=args.allow_pickle)
    texts = generate_text(
        model,
        tokenizer,
        args.prompt,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature if args.temperature is not None else 1.0,
        top_k=args.top_k,
        top_p=args.top_p,
        num_beams=args.num_beams,
        do_sample=not searching,
        seed=args.seed,
    )
    for text in texts:
        print(text, flush=True)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_model

    output = export_model(
        args.model_dir, args.output_dir, format=args.format, quantize=args.quantize, overwrite=args.overwrite
    )
    manifest = json.loads((output / "export.json").read_text(encoding="utf-8"))
    check = manifest["check"]
    print(
        f"Exported {args.model_dir} to {output} ({manifest['file']}"
        + (f", {manifest['quantization']}" if manifest["quantization"] else "")
        + f"); largest logit difference to PyTorch on the check batch: {check['max_abs_logit_difference']:.1e}"
    )
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from .recipes import build_untrained_model
    from .summary import summary

    summary(build_untrained_model(args.model))
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    from .cards import write_model_card

    print(f"Model card written to {write_model_card(args.model_dir, repo_id=args.repo_id)}")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from .hub import push_model

    url = push_model(args.model_dir, args.repo_id, private=args.private, revision=args.revision)
    print(f"Pushed {args.model_dir} to {url}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.generate:
        return _bench_generation(args)
    if args.deploy:
        from .deploy_bench import run_deploy_benchmark

        report = run_deploy_benchmark(quick=args.quick, model_dir=args.model_dir, output_dir=args.output_dir)
        print(report["markdown"])
        print(f"Results written to {Path(args.output_dir) / 'deploy_benchmark.json'} and .md", file=sys.stderr)
        return 0
    if args.model_dir:
        raise ValueError("--model-dir applies to --deploy (the accuracy column); add --deploy.")
    from .benchmark import CELLS, DEFAULT_SECTIONS, format_table, run_benchmark

    cells = tuple(c.strip() for c in args.cells.split(",") if c.strip()) if args.cells else CELLS
    sections = DEFAULT_SECTIONS + (("busy",) if args.load else ())
    if args.sections:
        sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    report = run_benchmark(
        quick=args.quick, cells=cells, keras=not args.no_keras, output_dir=args.output_dir, sections=sections
    )
    print(format_table(report))
    print(f"Results written to {Path(args.output_dir) / 'benchmark.json'} and benchmark.md", file=sys.stderr)
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce, select_recipes

    recipes = select_recipes(args.recipes, everything=args.all, overrides=args.set)
    report = reproduce(recipes, args.output_dir, offline=args.offline)
    outcome = {"trained": report.trained, "unchanged": report.reused, "skipped": report.skipped}
    print(", ".join(f"{len(names)} {word}" for word, names in outcome.items()) + f", {len(report.failed)} failed")
    print(f"Results written to {report.output_dir / 'RESULTS.md'} and results.json")
    if report.failed:
        print(f"hf-rnn: error: failed: {', '.join(report.failed)} (see RESULTS.md)", file=sys.stderr)
    return 1 if report.failed else 0


def _cmd_search(args: argparse.Namespace) -> int:
    from .recipes import load_recipe
    from .search import format_trials, search

    recipe = load_recipe(args.recipe, overrides=args.set)
    result = search(recipe, args.trials, output_dir=args.output_dir)
    print(format_trials(result, recipe.search.metric))
    print(f"Best trial {result.best_trial}: {recipe.search.metric} {result.best_value:.4f}")
    print(f"Best recipe written to {result.best_recipe}; train it with `hf-rnn train {result.best_recipe}`")
    print(f"Plot: {result.output_dir / 'search_plot.png'}; study: {result.output_dir / 'study.db'}")
    return 0


def _bench_generation(args: argparse.Namespace) -> int:
    from .generation_bench import format_generation_table, run_generation_benchmark

    cells = tuple(c.strip() for c in args.cells.split(",") if c.strip()) if args.cells else ("lstm", "gru", "rnn")
    report = run_generation_benchmark(cells=cells, quick=args.quick, output_dir=args.output_dir)
    print(format_generation_table(report))
    print(f"Results written to {Path(args.output_dir) / 'generation.json'}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-rnn", description="Recurrent text classifiers as Hugging Face transformers models."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub = commands.add_parser("list", help="list the models, recipes and embedded datasets")
    sub.set_defaults(run=_cmd_list)

    sub = commands.add_parser("train", help="train, evaluate and save a model from a recipe")
    sub.add_argument("recipe", nargs="?", help="a recipe name (see `hf-rnn list`) or YAML file; default: quickstart")
    sub.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe key, e.g. training.seed=1"
    )
    sub.add_argument("--output-dir", help="model directory to write (default: ./hf_rnn_outputs/<recipe name>)")
    sub.add_argument("--overwrite", action="store_true", help="replace an existing model directory")
    sub.set_defaults(run=_cmd_train)

    sub = commands.add_parser(
        "eval", help="evaluate a saved model (a language model: loss, perplexity and bits per token or character)"
    )
    sub.add_argument("model_dir")
    sub.add_argument("--data", help="dataset name or file (default: the model's own recipe data)")
    sub.add_argument("--text-column", default="text")
    sub.add_argument("--label-column", help="the labels' column of --data (default: label; classifiers only)")
    sub.add_argument("--split", default="test", choices=["train", "validation", "test"])
    sub.add_argument("--allow-pickle", action="store_true", help=PICKLE_HELP)
    sub.add_argument("--bf16", action="store_true", help=BF16_HELP)
    sub.set_defaults(run=_cmd_eval)

    sub = commands.add_parser("predict", help="label texts with a saved model (JSON lines: text, label, score)")
    sub.add_argument("model_dir")
    sub.add_argument("texts", nargs="*", help="texts to label; with none and no --file, lines are read from stdin")
    sub.add_argument("--file", help="a UTF-8 text file with one text per line ('-' for stdin)")
    sub.add_argument("--output", help="write results to a .jsonl or .csv file instead of stdout")
    sub.add_argument("--batch-size", type=_positive_int, default=64, help="texts per forward pass (default: 64)")
    sub.add_argument(
        "--backend",
        choices=["auto", "torch", "onnx"],
        default="auto",
        help="onnx: run a folder written by `hf-rnn export` with onnxruntime (no torch needed); auto (default): onnx "
        "for an ONNX export, torch otherwise",
    )
    sub.add_argument("--allow-pickle", action="store_true", help=PICKLE_HELP)
    sub.add_argument("--bf16", action="store_true", help=BF16_HELP)
    sub.set_defaults(run=_cmd_predict)

    sub = commands.add_parser("generate", help="continue prompts with a language model (model.task: causal_lm)")
    sub.add_argument("model_dir")
    sub.add_argument(
        "--prompt", action="append", required=True, help="text to continue ('' starts from nothing); repeatable"
    )
    sub.add_argument("--max-new-tokens", type=_positive_int, default=200, help="tokens to add (default: 200)")
    sub.add_argument("--temperature", type=_positive_float, help="sampling temperature (default: 1.0)")
    sub.add_argument("--top-k", type=_positive_int, help="sample from the K likeliest tokens only")
    sub.add_argument("--top-p", type=_probability, help="sample from the smallest set of tokens holding P")
    sub.add_argument("--num-beams", type=_positive_int, default=1, help="beam search with B beams (no sampling)")
    sub.add_argument("--greedy", action="store_true", help="always take the likeliest token (no sampling)")
    sub.add_argument("--seed", type=_non_negative_int, help="seed for repeatable sampling")
    sub.add_argument("--allow-pickle", action="store_true", help=PICKLE_HELP)
    sub.set_defaults(run=_cmd_generate)
    sub = commands.add_parser("export", help="export a model for deployment (ONNX, int8 ONNX, torch.export program)")
    sub.add_argument("model_dir")
    sub.add_argument("output_dir", metavar="OUT", help="the folder to write (missing or empty)")
    sub.add_argument("--format", choices=["onnx", "exported-program"], default="onnx")
    sub.add_argument(
        "--quantize", choices=["int8"], help="int8 weights by onnxruntime dynamic quantization (ONNX only)"
    )
    sub.add_argument("--overwrite", action="store_true", help="replace an earlier export in OUT")
    sub.set_defaults(run=_cmd_export)

    sub = commands.add_parser("summary", help="print a Keras-style summary of a model")
    sub.add_argument("model", help="a model name or YAML from configs/models, a recipe, or a saved model directory")
    sub.set_defaults(run=_cmd_summary)

    sub = commands.add_parser("card", help="(re)generate the model card README.md of a model directory")
    sub.add_argument("model_dir")
    sub.add_argument(
        "--repo-id", help="the Hub repo the card's snippets load from (default: the recipe's hub.repo_id)"
    )
    sub.set_defaults(run=_cmd_card)

    sub = commands.add_parser("push", help="upload a model directory (weights, tokenizer, code, card) to the Hub")
    sub.add_argument("model_dir")
    sub.add_argument("repo_id", help="user/model-name")
    sub.add_argument("--private", action="store_true", help="create the repository as private")
    sub.add_argument("--revision", help="a branch to push to (created if missing)")
    sub.set_defaults(run=_cmd_push)

    sub = commands.add_parser("bench", help="tokens/s against plain PyTorch and Keras (see hf_rnn/benchmark.py)")
    sub.add_argument("--quick", action="store_true", help="a scaled-down workload that finishes in about a minute")
    sub.add_argument("--cells", help="comma-separated cells to measure (default: lstm,gru,rnn)")
    sub.add_argument("--no-keras", action="store_true", help="skip the Keras/TensorFlow rows")
    sub.add_argument(
        "--load",
        action="store_true",
        help="also measure training beside busy processes (starts 1-2 busy processes for a few minutes)",
    )
    sub.add_argument(
        "--sections",
        help="comma-separated sections to run: cells,frontend,sweep,tokenization,busy (default: all but busy)",
    )
    sub.add_argument(
        "--generate",
        action="store_true",
        help="language-model generation tokens/s with the recurrent cache vs rerunning the prefix instead",
    )
    sub.add_argument("--output-dir", default="bench_results", help="where benchmark.json and benchmark.md go")
    sub.add_argument(
        "--deploy",
        action="store_true",
        help="inference rows instead: PyTorch fp32 / bf16 / int8 and onnxruntime fp32 / int8 (hf_rnn/deploy_bench.py)",
    )
    sub.add_argument("--model-dir", help="with --deploy: a trained quickstart model, for the accuracy column")
    sub.set_defaults(run=_cmd_bench)

    sub = commands.add_parser(
        "reproduce", help="train recipes with their fixed seeds and write RESULTS.md and results.json"
    )
    sub.add_argument("recipes", nargs="*", help="recipe names, YAML files or patterns such as 'imdb_*'")
    sub.add_argument("--all", action="store_true", help="every shipped recipe")
    sub.add_argument(
        "--offline", action="store_true", help="skip recipes that need the network (marked in `hf-rnn list`)"
    )
    sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key in every recipe")
    sub.add_argument(
        "--output-dir",
        default="hf_rnn_outputs/reproduce",
        help="where models/ and the results go (default: hf_rnn_outputs/reproduce)",
    )
    sub.set_defaults(run=_cmd_reproduce)

    sub = commands.add_parser("search", help="hyperparameter search over a recipe's search: section (optuna)")
    sub.add_argument("recipe", help="a recipe name or YAML file with a search: section")
    sub.add_argument("--trials", type=_positive_int, required=True, help="trials in the study (a resumed one too)")
    sub.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe key, e.g. training.seed=1"
    )
    sub.add_argument("--output-dir", help="study, trials and best recipe (default: ./hf_rnn_outputs/<recipe>_search)")
    sub.set_defaults(run=_cmd_search)
    return parser


def _show_hf_rnn_messages() -> None:
    """hf_rnn's own progress notes (vector coverage, feature caching) go to stderr, as the progress bars do."""
    logger = logging.getLogger("hf_rnn")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("hf-rnn: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _show_hf_rnn_messages()
    try:
        return args.run(args)
    except (*USER_ERRORS, *USER_OS_ERRORS) as error:
        if os.environ.get("HF_RNN_DEBUG"):
            raise
        _close_progress_bars()
        print(f"hf-rnn: error: {_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hf-rnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (`| head`): stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:  # a failure while running: one line, exit 1, traceback only on request
        if os.environ.get("HF_RNN_DEBUG"):
            raise
        _close_progress_bars()
        if isinstance(error, OSError) and error.errno in _USER_ERRNOS:
            print(f"hf-rnn: error: {_message(error)}", file=sys.stderr)
            return 2
        print(f"hf-rnn: error: {type(error).__name__}: {one_line(error)}", file=sys.stderr)
        return 1


def _close_progress_bars() -> None:
    """Ends the progress bars a failure left open, so that the error starts on a line of its own."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def _message(error: BaseException) -> str:
    """One line; an OS error on a path reads as `PATH: reason`, as coreutils print it."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}" + (f" ({error.filename2})" if error.filename2 else "")
    return one_line(error)


if __name__ == "__main__":
    sys.exit(main())
