"""The ``dustcmb`` command line: one sub-command per pipeline stage.

Every command takes ``--params`` (default ``params.yaml``). Problems the user can fix are printed
as a single ``error:`` line with exit status 2 and no traceback.
"""

from __future__ import annotations

import sys

import typer

from dustcmb.errors import DustcmbError
from dustcmb.evaluation.cli import (
    ablate_command,
    gan_evaluate_command,
    report_command,
    separation_evaluate_command,
    transfer_command,
)
from dustcmb.gan.cli import gan_app
from dustcmb.patches.cli import patches_command
from dustcmb.separation.cli import train_command
from dustcmb.simulation.cli import data_command
from dustcmb.sky.cli import sky_command
from dustcmb.tuning.cli import tune_command

app = typer.Typer(
    help="dustcmb: learn Galactic dust with a GAN, clean it from CMB maps with a Bayesian ResUNet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("sky")(sky_command)
app.command("patches")(patches_command)
gan_app.command("evaluate")(gan_evaluate_command)
app.add_typer(gan_app, name="gan")

separation_app = typer.Typer(help="Separate CMB from dust: data, training, evaluation.", no_args_is_help=True)
separation_app.command("data")(data_command)
separation_app.command("train")(train_command)
separation_app.command("evaluate")(separation_evaluate_command)
app.add_typer(separation_app, name="separation")
app.command("tune")(tune_command)
app.command("report")(report_command)
app.command("ablate")(ablate_command)
app.command("transfer")(transfer_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point; ``argv`` defaults to ``sys.argv[1:]``."""
    import matplotlib

    matplotlib.use("Agg")  # commands write PNG files and never open a window
    try:
        app(args=argv, prog_name="dustcmb")
    except DustcmbError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
