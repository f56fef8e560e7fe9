"""Builder of chapter 06 (``python notebooks/drafts/nb06.py notebooks/06_storytelling.ipynb``).

Needs the shipped ``divot_tokenizer``, ``divot_llm`` and ``divot_llm_sft`` weights
(``python scripts/train.py divot_llm_sft --ship`` makes the last one from the second).
"""
import sys
import os
sys.path.insert(0, os.path.dirname(__file__))
from nbtools import build

C = []
md = lambda s: C.append(("md", s))  # noqa: E731
code = lambda s: C.append(("code", s))  # noqa: E731

md(r"""
# 06 · Storytelling: text and clips, interleaved

The paper's last demonstration: asked for a story, Divot-LLM writes a sentence, then the clip it
describes, then the next sentence, the next clip, … — text and video in one sequence, written by one
model. Nothing new is needed in the model: reading (chapter 04) and writing clips (chapter 05) are the
two halves. What is new is the *layout* of the sequence and an **instruction-tuning** stage that
teaches it.

The plan: the stories of Moving Shapes (§1), how a story is laid out and masked (§2), the
instruction-tuning stage (§3), writing stories (§4), and scoring them (§5).
""")
code(r"""
import matplotlib.pyplot as plt
import torch

from divot_mini import llm_evaluation as LE
from divot_mini import llm_training as LT
from divot_mini import text_tokenizer as tt
from divot_mini import viz
from divot_mini.data import MovingShapesStories
from divot_mini.divot_llm import attention_mask_4d, collate, story_example
from divot_mini.linear_probe import LinearProbes
from divot_mini.probe import load_probe
from divot_mini.tokenizer_evaluation import decode_tokens
from divot_mini.tokenizer_training import load_trained

FAST = viz.is_fast()  # DIVOT_FAST=1 (CI) shrinks the workload; every assert below still runs
torch.manual_seed(0)
print("fast mode:", FAST)
""")
md(r"""
## 1. The stories

`data.MovingShapesStories` holds three-clip stories: one object (shape and colour) throughout, a new
motion in each clip. The instruction names the object; the sentences name the motions.
""")
code(r"""
stories = MovingShapesStories("train")
s = stories[0]
print(s["instruction"])
for sentence in s["sentences"]:
    print("  ", sentence)
_ = viz.frame_grid(s["video"], row_labels=s["sentences"], frames=range(0, 16, 3), path="06_data_story.png")
plt.show()
assert s["video"].shape[:2] == (3, 16) and len(s["sentences"]) == 3
""")
md(r"""
## 2. The layout: each clip is written where its sentence ends

A story becomes one training sequence (`divot_llm.story_example`):

    <s>[INST] generate a story about a red circle [/INST]\n
        a red circle moves left. <vid><frame> q q … q </frame></vid>
        then it moves up.        <vid><frame> q q … q </frame></vid>
        then it moves right.     <vid><frame> q q … q </frame></vid></s>

Each `q q … q` is a block of $N$ query positions, exactly the written clip of chapter 05: the model's
output states there go through the GMM head, whose loss is the negative log-likelihood of that clip's
real Divot tokens. The words, `<vid>`, `</vid>` and `</s>` carry the ordinary next-token loss. The
attention mask is causal everywhere except inside each query block, where the $N$ positions see each
other — three bidirectional squares on the diagonal:
""")
code(r"""
text_tok = tt.build_text_tokenizer()
N = tt.MINI_NUM_TOKENS
ex = story_example(text_tok, s["instruction"], s["sentences"])
mask2d = torch.tensor([ex["attention_mask"]])
allowed = attention_mask_4d(mask2d, N)[0, 0] == 0
print(f"{len(ex['input_ids'])} positions, {int((mask2d == -1).sum())} of them queries "
      f"({int((mask2d == -1).sum()) // N} clips x {N})")
fig, ax = plt.subplots(figsize=(4, 4))
ax.imshow(allowed, cmap="Greys", interpolation="nearest")
ax.set_xlabel("key position"), ax.set_ylabel("query position"), ax.set_title("who may attend to whom", fontsize=9)
fig.tight_layout(), fig.savefig(viz.figures_dir() / "06_story_mask.png", dpi=120)
plt.show()
q = (mask2d[0] == -1).nonzero()[:, 0]
assert allowed[q[0], q[N - 1]] and not allowed[q[0] - 1, q[0]]  # bidirectional inside, causal outside
""")
md(r"""
At generation time the same layout is produced step by step (`DivotLLM.generate_interleaved`): the model
writes words greedily; when it writes `<vid>`, the program appends `<frame>` and $N$ query positions, one
forward pass writes the clip (a GMM sample per token), `</frame>` closes it, and writing goes on with the
query block left in place — so the rest of the story sees the clip the way training showed it.
`Divot.story` wraps that and decodes every clip with the de-tokenizer.

## 3. Instruction tuning

The official Divot-LLM is pre-trained, then instruction-tuned. The course's
`llm_training.train_divot_llm_sft` starts from the pre-trained model of chapter 04 and continues at a
lower learning rate (3e-4) on a mix per step: 16 comprehension examples, 16 text-to-video examples and 16
stories (the tokens of 1,024 training stories, 3 clips each). Mixing the old tasks in keeps the model from
forgetting them. A few steps here, on a small story table, to see the losses move:
""")
code(r"""
divot = load_trained(verbose=False)
base, _ = LT.load_divot_llm(verbose=False)
t_story = LT.story_table(divot, "train", 64 if FAST else 256)
t_clips = LT.token_table(divot, "train", 256 if FAST else 1024)
print("story table:", tuple(t_story.tokens.shape), "(stories, clips, N, d)")
student = LT.build_divot_llm()
student.load_state_dict(base.state_dict())
task = LT.DivotLLMTraining(student, text_tok, t_clips, total_steps=12 if FAST else 60, lr=3e-4,
                           comp_batch=8, gen_batch=8, stories=t_story, story_batch=8, fit_stats=False)
probe_batch = task.make_batch(10_000)  # a batch the run never trains on
with torch.no_grad():
    before = {k: round(float(v), 3) for k, v in task.losses(probe_batch).items()}
LT.fit(task, progress=False)
with torch.no_grad():
    after = {k: round(float(v), 3) for k, v in task.losses(probe_batch).items()}
print("before:", before)
print("after: ", after)
assert after["story_lm"] < before["story_lm"]  # the pre-trained model has never seen a story
""")
md(r"""
The story text loss falls fast — the pre-trained model had never seen a story. Note the GMM losses: they
get *worse* at first. A fresh optimizer's first steps are large relative to the very narrow mixture
components pre-training found (chapter 05), so every continued-training stage pays some of that back;
the shipped run ends at a GMM loss of −2.35 per dimension against −2.77 after pre-training.

The shipped instruction-tuned model (`divot_llm_sft`, 300 steps, trained by
`python scripts/train.py divot_llm_sft --ship`) did this at full length. Its provenance:
""")
code(r"""
llm, prov = LT.checkpoints.load("divot_llm_sft", verbose=False)
m = prov["metrics"]
print(prov["command"], "| seed", prov["seed"], "| commit", prov["commit"])
print(f"trained {m['train_seconds']:.0f} s on {m['threads']} threads")
for k in ("test_caption_all", "test_qa", "heldout_caption_all"):
    print(f"  {k:22s} {m[k]:.3f}")
""")
md(r"""
## 4. Writing stories

The motions of a story are random in the data (any motion but the previous one), so the text is
*sampled* (temperature 1, seeded), not greedy: a greedy model tells the same story every time — for this
model "moves up", "then it moves up", "then it moves up".
""")
code(r"""
vid, evid = (tt.special_token_id(text_tok, t) for t in (tt.VID_BOI_TOKEN, tt.VID_EOI_TOKEN))
instructions = ["generate a story about a red circle", "generate a story about a blue triangle"]
written = []
for i, instruction in enumerate(instructions):
    parts = llm.generate_interleaved(tt.instruction_ids(text_tok, instruction), text_tok.eos_token_id, vid, evid,
                                     temperature=1.0, generator=torch.Generator().manual_seed(i), var_scale=0.1)
    sentences, clips = LE.split_story(parts)
    sentences = [tt.decode_words(text_tok, x) for x in sentences]
    videos = decode_tokens(divot, torch.stack(clips), steps=10, seed=0) if clips else None
    written.append((instruction, sentences, videos))
    print(instruction)
    for sentence in sentences:
        print("   ", sentence, "[clip]")
for j, (instruction, sentences, videos) in enumerate(written):
    if videos is not None:
        viz.frame_grid(videos, row_labels=sentences, frames=range(0, 16, 3), path=f"06_story_{j}.png")
        plt.show()
assert all(len(sentences) >= 1 for _, sentences, _ in written)
""")
md(r"""
## 5. Scoring stories

A story is **consistent** (`llm_evaluation.story_consistency`) when

* its *format* is right — three sentences, each followed by a clip; the first names the instruction's
  object and a motion, each later one a motion different from the one before;
* every clip shows the instruction's *object* (shape and colour), by the probe;
* every clip *moves* the way its sentence says, by the probe.

Two probes judge the clips: the video probe of chapter 00 on the decoded clips, and linear probes fitted
on real Divot tokens (chapter 05) on the written tokens — the latter without the de-tokenizer's errors.
""")
code(r"""
n = 8 if FAST else 32
probes = LinearProbes(t_clips.tokens, t_clips.labels())
report = LE.story_report(llm, text_tok, divot, load_probe(verbose=False), probes, n=n, splits=("test",))
print(f"{n} test stories: format {report['story_test_format']:.2f}, clips per story {report['story_test_clips']:.2f}")
for check in LE.STORY_CHECKS[1:]:
    print(f"  {check:11s} video probe {report['story_test_' + check]:.2f}   token probes {report['story_test_token_' + check]:.2f}")
for k in ("shape", "colour", "motion"):
    print(f"  per clip, {k:6s} video probe {report['story_test_clip_' + k]:.2f}   token probes {report['story_test_token_clip_' + k]:.2f}")
print("shipped run, 32 stories per split:")
for split in ("test", "heldout"):
    print(f"  {split:8s} format {m[f'story_{split}_format']:.2f} (before instruction tuning {m[f'base_story_{split}_format']:.2f}), "
          f"clips {m[f'story_{split}_clips']:.2f} (before {m[f'base_story_{split}_clips']:.2f}), "
          f"consistent {m[f'story_{split}_consistent']:.2f}; per clip shape / colour / motion "
          + " / ".join(f"{m[f'story_{split}_token_clip_{k}']:.2f}" for k in ("shape", "colour", "motion")) + " (token probes)")
assert report["story_test_clips"] >= 2.5  # instruction tuning taught the layout: three clips per story
""")
md(r"""
### What the shipped model does, and what it misses

Instruction tuning taught the **layout**: the pre-trained model answers a story instruction with at most
one clip and stops; the tuned one writes sentence, clip, sentence, clip, sentence, clip (2.9 clips per
story on average). The **text** has the story's format about half of the time (0.53 on test stories, 0.44 on
held-out objects: three sentences, the instruction's object named first, each motion different from the
one before); the other stories repeat a motion or miscopy the object — 300 steps of tuning have not
taught the rule "the next motion differs" reliably. The **clips** show the prompt's colour (1.00 per
clip by the token probes, 0.96 by the video probe) and its shape as far as the tokens carry shape (0.77),
and the same object in all three clips in 56% of the test stories — but the tokens carry no motion at
all (chapter 03), so no clip can show its sentence's motion.

**Bar of the course: ≥ 80% of 3-clip stories consistent — missed: 0 of 32 on test and on held-out.** A
consistent story needs every clip's motion right as well, and with motion at chance (a quarter per clip)
and the text's motions not yet constrained, the expected share is below 2%. The way up is the tokenizer
(chapter 03: motion is averaged away in its Perceiver resampler) and longer instruction tuning.
""")
build(C, sys.argv[1])
