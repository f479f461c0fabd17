"""The ``crossgraph`` command (typer): convert, validate, inspect, optimize, formats.

Exit codes: 0 success, 1 parity failed, 2 bad input or unsupported model,
3 internal error (a bug: please report it with the ``--debug`` traceback).
Errors are one line on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Annotated, Any

import typer

from converter import cli_output as out
from converter.errors import CrossgraphError

app = typer.Typer(
    name="crossgraph",
    help=(
        "Convert models between TensorFlow, PyTorch and ONNX through one IR, optimize them, "
        "and prove the result computes what the source did.\n\n"
        "Example: crossgraph convert model.onnx model.pt"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the traceback on errors.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
InputOpt = Annotated[
    list[str] | None,
    typer.Option("--input", "-i", help="Input spec NAME:SHAPE[:DTYPE]; a symbol may take a range SYMBOL=MIN..MAX (either end optional), "
                 "e.g. 'x:batch x 3 x 224 x 224:float32' or 'input_ids:batch x seq=..512:int64'. Repeatable."),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="Where parity runs: cpu or cuda.")]
UnsafeOpt = Annotated[
    bool,
    typer.Option(
        "--unsafe-load",
        help="Load files that run embedded code: Keras Lambda layers, TF PyFunc/file/network ops, "
        "TorchScript calls that reach files, .pt2 pickles that need more than tensors (read with "
        "weights_only=True otherwise) and .pt2 AOTInductor native code. Refused by default. Note: "
        "loading any TorchScript file runs its TorchScript code.",
    ),
]


def _handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = kwargs.get("debug", False) or os.environ.get("CROSSGRAPH_DEBUG") == "1"
        as_json = kwargs.get("as_json", False)
        if as_json:
            from converter.visual import progress

            progress.configure(False)
        if not debug:  # frameworks' deprecation chatter is not the user's business
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|tensorflow|keras|tf2onnx|onnxscript)")
            # onnx_ir logs a warning for a malformed graph before the front end refuses it; without
            # a handler logging prints it on stderr, a second line beside our one-line error.
            logging.getLogger("onnx_ir").setLevel(logging.ERROR)
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except BrokenPipeError:  # the reader went away (`| head`): not an error of ours
            sys.stderr.close()
            raise typer.Exit(0) from None
        except CrossgraphError as e:
            _fail(e.message, e.hint, e.exit_code, debug, as_json)
        except KeyboardInterrupt:
            _fail("interrupted", None, 130, debug, as_json)
        except Exception as e:  # a bug, not the user's fault
            _fail(f"internal error: {type(e).__name__}: {e}", "rerun with --debug and report the traceback", 3, True if debug else False, as_json)

    return wrapper


def _fail(message: str, hint: str | None, code: int, debug: bool, as_json: bool) -> None:
    if debug:
        traceback.print_exc()
    line = f"error: {message}" + (f"; {hint}" if hint else "")
    print(line.replace("\n", " "), file=sys.stderr)
    if as_json:
        print(json.dumps({"ok": False, "error": message, "hint": hint, "exit_code": code}))
    raise typer.Exit(code)


@app.command()
@_handle_errors
def convert(
    source: Annotated[str, typer.Argument(help="Model file or directory, or package.module:function returning an nn.Module.")],
    destination: Annotated[str, typer.Argument(help="Output path; its suffix picks the format (no suffix: SavedModel dir).")],
    from_format: Annotated[str | None, typer.Option("--from", help="Source format (see `crossgraph formats`).")] = None,
    to_format: Annotated[str | None, typer.Option("--to", help="Target format (see `crossgraph formats`).")] = None,
    input: InputOpt = None,
    opset: Annotated[int | None, typer.Option("--opset", help="ONNX opset of the result (ONNX targets).")] = None,
    level: Annotated[int, typer.Option("-O", "--optimize", min=0, max=2, help="Optimization level: 0 none, 1 cleanup, 2 fusions.")] = 2,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Check parity before writing the result.")] = True,
    device: DeviceOpt = "cpu",
    emit_source: Annotated[str | None, typer.Option("--emit-source", help="TorchScript target: also write the generated Python module here.")] = None,
    signature: Annotated[str | None, typer.Option("--signature", help="SavedModel source: the signature to convert (default serving_default).")] = None,
    output: Annotated[list[str] | None, typer.Option("--output", help="Frozen GraphDef source: an output node name. Repeatable.")] = None,
    quantize: Annotated[str | None, typer.Option("--quantize", help="TFLite target: weight precision, fp16, dynamic-int8 or int8 (needs --representative-data).")] = None,
    nhwc_io: Annotated[bool, typer.Option("--nhwc-io", help="TFLite target: 4-D inputs/outputs NHWC instead of the source's NCHW.")] = False,
    representative_data: Annotated[str | None, typer.Option("--representative-data", help="TFLite --quantize int8: .npz of calibration inputs (samples on axis 0).")] = None,
    tflite_allow_tf_ops: Annotated[bool, typer.Option("--tflite-allow-tf-ops", help="TFLite target: allow TF (Flex) ops where no builtin exists.")] = False,
    tensorboard: Annotated[str | None, typer.Option("--tensorboard", help="Write the source and the result as TensorBoard graphs (runs 'source', 'converted') in this log directory.")] = None,
    report: Annotated[str | None, typer.Option("--report", help="Write a self-contained HTML report (parity, pass report) here.")] = None,
    unsafe_load: UnsafeOpt = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Convert a model to another format (or re-optimize it in the same one).

    Example: crossgraph convert resnet.onnx resnet.pt --input 'x:batch x 3 x 224 x 224'
    """
    import converter

    out.check_outputs(report, tensorboard)
    options: dict[str, Any] = {}
    if emit_source:
        options["backend_emit_source"] = emit_source
    if quantize:
        options["backend_quantize"] = quantize
    if tflite_allow_tf_ops:
        options["backend_allow_tf_ops"] = True
    if nhwc_io:
        options["backend_nhwc_io"] = True
    if representative_data:
        options["backend_representative_data"] = representative_data
    if signature:
        options["signature"] = signature
    if output:
        options["outputs"] = list(output)
    try:
        result = converter.convert(
            source, destination, source_format=from_format, target_format=to_format, inputs=input or None,
            opset=opset, optimize=level, check=check, device=device, unsafe_load=unsafe_load,
            tensorboard=tensorboard, **options,
        )
    except converter.ParityError as e:
        if report and e.report is not None:
            out.try_write_report(report, e.report, None)  # the parity error, exit 1, follows either way
        raise
    if as_json:
        out.echo_json({"ok": True, **result.to_dict()})
    else:
        print(result.summary())
        if tensorboard:
            print(f"  TensorBoard graphs in {tensorboard} (view with: tensorboard --logdir {tensorboard})")
    if report and result.parity is not None and not out.try_write_report(report, result.parity, result.passes):
        raise typer.Exit(2)


@app.command()
@_handle_errors
def validate(
    source: Annotated[str, typer.Argument(help="The original model.")],
    converted: Annotated[str, typer.Argument(help="The converted model.")],
    input: InputOpt = None,
    inputs: Annotated[str | None, typer.Option("--inputs", help="A .npz file of named input arrays to use instead of random inputs.")] = None,
    rtol: Annotated[float | None, typer.Option("--rtol", help="Relative tolerance (default per dtype).")] = None,
    atol: Annotated[float | None, typer.Option("--atol", help="Absolute tolerance (default per dtype).")] = None,
    device: DeviceOpt = "cpu",
    batches: Annotated[int, typer.Option("--batches", min=1, help="Random batches to compare.")] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random inputs.")] = 0,
    localize: Annotated[bool, typer.Option("--localize", help="On a mismatch, name the first node that diverges (runs the IR on crossgraph's kernels vs onnxruntime).")] = False,
    repro_dir: Annotated[str | None, typer.Option("--repro-dir", help="With --localize: write the divergent node's model and inputs here.")] = None,
    report: Annotated[str | None, typer.Option("--report", help="Write a self-contained HTML report here.")] = None,
    unsafe_load: UnsafeOpt = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run both models on the same inputs and compare every output. Exit 1 on mismatch.

    Example: crossgraph validate model.onnx model.pt --batches 3
    """
    from converter import parity
    from converter.inputs import InputSpec

    out.check_outputs(report, None)
    sizes = {}
    for spec in (InputSpec.parse(s) for s in input or []):
        for d in spec.shape or ():
            if isinstance(d, str):  # 2, or the smallest size the spec's range allows
                sizes.setdefault(d, max(2, spec.bounds.get(d, (None, None))[0] or 0))
    result = parity.validate(source, converted, inputs=inputs, rtol=rtol, atol=atol, device=device,
                             batches=batches, seed=seed, sizes=sizes or None, unsafe_load=unsafe_load,
                             localize=localize, repro_dir=repro_dir)
    if as_json:
        out.echo_json(result.to_dict())
    else:
        out.print_parity(result)
    written = not report or out.try_write_report(report, result, None)
    if not result.passed:
        raise typer.Exit(1)  # the verdict sets the exit code, whatever became of the report
    if not written:
        raise typer.Exit(2)


@app.command()
@_handle_errors
def inspect(
    model: Annotated[str, typer.Argument(help="Model file or directory (any readable format).")],
    from_format: Annotated[str | None, typer.Option("--from", help="Source format (see `crossgraph formats`).")] = None,
    input: InputOpt = None,
    text: Annotated[bool, typer.Option("--text", help="Print the IR in ONNX text form.")] = False,
    tensorboard: Annotated[str | None, typer.Option("--tensorboard", help="Write the model as a TensorBoard graph in this log directory.")] = None,
    unsafe_load: UnsafeOpt = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Summarize a model: inputs/outputs with dtypes and symbolic shapes, op histogram, parameters.

    Example: crossgraph inspect model.onnx --text
    """
    import converter
    import ir
    from converter.summary import human_bytes, summarize

    out.check_outputs(None, tensorboard)
    m = converter.load(model, format=from_format, inputs=input or None, unsafe_load=unsafe_load)
    info = summarize(m)
    if tensorboard:
        import pathlib

        from converter.visual import tensorboard as tb

        event = tb.write_graph(m, tensorboard, run_name=pathlib.Path(model).stem or "model")
        info["tensorboard"] = str(event)
        if not as_json:
            print(f"TensorBoard graph: {event} (view with: tensorboard --logdir {tensorboard})")
    if as_json:
        if text:
            info["text"] = ir.to_onnx_text(m)
        out.echo_json(info)
        return
    opsets = ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in info["opset_imports"].items())
    print(f"{model}: graph {info['name']!r}, producer {info['producer'] or '-'}, opset {opsets}")
    rows = [[kind[:-1], v["name"], v["dtype"], v["shape"]] for kind in ("inputs", "outputs") for v in info[kind]]
    out.print_table("signature", ["", "name", "dtype", "shape"], rows)
    if info["symbols"]:
        print("symbolic dims: " + ", ".join(info["symbols"]))
    out.print_table(
        f"ops: {info['nodes']} nodes, {info['subgraphs']} subgraphs",
        ["op", "count"],
        [[op, str(n)] for op, n in info["op_histogram"].items()],
    )
    print(
        f"parameters: {info['parameters']:,} ({human_bytes(info['parameter_bytes'])})"
        + (f", {info['external_tensors']} tensors in external data" if info["external_tensors"] else "")
        + (f"; local functions: {', '.join(info['functions'])}" if info["functions"] else "")
    )
    if text:
        print(ir.to_onnx_text(m))


@app.command()
@_handle_errors
def optimize(
    source: Annotated[str, typer.Argument(help="Model to optimize.")],
    destination: Annotated[str, typer.Argument(help="Where to write the optimized model.")],
    level: Annotated[int, typer.Option("-O", "--optimize", min=0, max=2, help="Optimization level: 0 none, 1 cleanup, 2 fusions.")] = 2,
    report: Annotated[bool, typer.Option("--report", help="Print what each pass did.")] = False,
    verify_each: Annotated[bool, typer.Option("--verify-each", help="Verify the IR after every pass.")] = False,
    unsafe_load: UnsafeOpt = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Optimize a model and write it in the same (or the destination's) format.

    Example: crossgraph optimize model.onnx model.opt.onnx -O 2 --report
    """
    import converter
    from converter import formats

    m = converter.load(source, unsafe_load=unsafe_load)
    before = len(list(m.graph))
    pass_report = converter.optimize(m, level, verify_each=verify_each)
    converter.save(m, destination, format=formats.detect_target(destination))
    data = {"ok": True, "source": source, "destination": destination, "level": level, "nodes_before": before,
            "nodes_after": len(list(m.graph)),
            "passes": pass_report.to_dict() if pass_report is not None and hasattr(pass_report, "to_dict") else None}
    if as_json:
        out.echo_json(data)
        return
    summary = pass_report.summary() if pass_report is not None else "no optimizer available"
    print(f"{source} -> {destination}: {summary}")
    if report and pass_report is not None and hasattr(pass_report, "table_rows"):
        for row in pass_report.table_rows():
            print("  " + "  ".join(str(c) for c in row))


@app.command()
@_handle_errors
def formats(as_json: JsonOpt = False, debug: DebugOpt = False) -> None:
    """List the formats crossgraph reads and writes (the conversion matrix).

    Example: crossgraph formats --json
    """
    from converter.formats import FORMATS

    rows = [
        {"format": f.name, "suffixes": list(f.suffixes), "read": f.can_read(), "write": f.can_write(), "description": f.description}
        for f in FORMATS.values()
    ]
    if as_json:
        out.echo_json(rows)
        return
    out.print_table(
        "formats (read: a front end exists; write: a back end exists)",
        ["format", "suffixes", "read", "write", "description"],
        [
            [r["format"], " ".join(r["suffixes"]) or "(API/dir)", "yes" if r["read"] else "-",
             "yes" if r["write"] else "-", r["description"]]
            for r in rows
        ],
    )


def main() -> None:
    """Entry point of the ``crossgraph`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info lines are noise here
    from converter.cli_stderr import filtered_stderr

    with filtered_stderr():  # and the lines it prints before that setting applies
        app()


if __name__ == "__main__":
    main()
