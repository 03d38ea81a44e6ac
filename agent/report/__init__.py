"""The campaign report: one self-contained HTML page built from the store alone.

Everything shown is read back from the store (the truth), and the model is refitted from the stored
valid interpretations exactly as the campaign loop builds its history, so a report of a finished,
crashed or still-running campaign shows what the policy would see now.

Stages, one module each:

- ``data``: what the report reads from the store, once, into plain dataclasses;
- ``model``: the GP refitted from that history, and the slice of the design space it is drawn over;
- ``figures``: the campaign figures (design space, model, targets), one function per figure;
- ``sample``: the within-sample figures of SAS and XRD campaigns (data and answer);
- ``page``: the HTML sections and the file (``write_report``);
- ``formatting``: plain-text formatting shared by figures and page.
"""

from agent.report.page import write_report

__all__ = ["write_report"]
