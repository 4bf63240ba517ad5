"""Example white-box method: look only at the weight diff's tensors, never run the model.

It reports which layers the diff changed most (a weak but honest answer: it says *where*, not
*what*). It shows how to read `case.diff` (LoRA factors per module, or dense deltas).
"""

from wdqa.core.engine import Engine
from wdqa.core.lora import delta_weight
from wdqa.core.types import Case


class WeightNorms:
    name = "weight-norms"
    oracle = False
    access = "white-box"  # reads the diff's tensors

    def answer(self, cases: list[Case], engine: Engine) -> list[str]:
        answers = []
        for case in cases:
            norms = {m: float(delta_weight(case.diff, m).norm()) for m in case.diff.modules}
            top = sorted(norms, key=norms.get, reverse=True)[:2]
            answers.append("changes concentrated in " + " and ".join(m.split("model.")[-1] for m in top))
        return answers
