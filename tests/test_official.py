"""The full-size switch: the official key sets (meta device, against the manifests) and the loaders
on synthetic releases in the official layout (round trip, strictness, unsafe pickles, missing files).

Documented exceptions to "every key matches" (official.py explains each):
* tokenizer checkpoint: ``vit_model.*`` absent or complete (then ignored);
* de-tokenizer checkpoint: ``video_tokenizer.*`` absent or complete, the 12 schedule buffers
  absent or equal to the official schedule (both ignored);
* CLIP file: the text tower and ``visual.proj`` (ignored; CLIPVisionModel has no ``proj``);
* LLM state dicts: ``*.rotary_emb.inv_freq`` (ignored).
"""
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import AutoencoderKL
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from transformers import CLIPVisionModel, MistralForCausalLM

from divot_mini import diffusion
from divot_mini import official as O
from divot_mini import official_synthetic as S
from divot_mini import text_tokenizer as tt
from divot_mini.divot_llm import comprehension_example, generation_prompt, mistral_7b_config
from divot_mini.frozen_vit import clip_normalize, vit_h14_config
from divot_mini.vae import sd_vae_config

torch.set_num_threads(1)
MANIFESTS = Path(__file__).parent / "fixtures" / "divot_official"
CLIP_TEXT_LEFTOVERS = {"positional_embedding", "text_projection", "logit_scale", "token_embedding.weight",
                       "ln_final.weight", "ln_final.bias"}  # after the official `del model.transformer`


def entries(name: str) -> dict:
    return json.loads((MANIFESTS / f"{name}.json").read_text())["entries"]


def shapes(ent: dict, prefix: str = "") -> dict:
    return {k[len(prefix):]: tuple(v["shape"]) for k, v in ent.items() if k.startswith(prefix)}


def meta_sd(shape_map: dict, prefix: str = "") -> dict:
    return {prefix + k: torch.empty(s, device="meta") for k, s in shape_map.items()}


def module_shapes(m: nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


# ----------------------------------------------------------------------------- full key sets
def test_full_tokenizer_and_agent_keys_equal_the_manifests():
    assert O.expected_tokenizer_shapes() == shapes(entries("tokenizer"))
    assert O.expected_agent_shapes() == shapes(entries("agent"))


def test_full_vit_keys_convert_to_clip_vision_model_keys():
    vit = entries("tokenizer_vit")
    visual = shapes(vit, "vit_model.model.visual.")
    assert O.openclip_visual_shapes(vit_h14_config()) == visual
    leftovers = {k[len("vit_model.model."):] for k in vit if not k.startswith("vit_model.model.visual.")}
    assert leftovers == CLIP_TEXT_LEFTOVERS and leftovers <= set(O.CLIP_TEXT_KEYS)
    converted = O.openclip_to_clip_vision(meta_sd(visual))
    with torch.device("meta"):
        hf = CLIPVisionModel(vit_h14_config())
    assert {k: tuple(v.shape) for k, v in converted.items()} == module_shapes(hf)
    # every visual parameter is used except visual.proj (the documented leftover)
    used = sum(math.prod(s) for k, s in visual.items() if k not in O.CLIP_VISUAL_UNUSED)
    assert used == sum(p.numel() for p in hf.parameters()) == 632_076_800 - 1280 * 1024


def test_full_vae_ldm_keys_convert_to_diffusers_keys():
    ldm = shapes(entries("detokenizer"), "first_stage_model.")
    assert O.ldm_vae_shapes(sd_vae_config()) == ldm
    converted = convert_ldm_vae_checkpoint(meta_sd(ldm, "first_stage_model."), sd_vae_config())
    with torch.device("meta"):
        vae = AutoencoderKL(**sd_vae_config())
    assert {k: tuple(v.shape) for k, v in converted.items()} == module_shapes(vae)
    assert {k: tuple(v.shape) for k, v in O.convert_vae(meta_sd(ldm), sd_vae_config()).items()} == module_shapes(vae)


def test_full_detokenizer_keys_equal_the_manifest_with_the_documented_exceptions():
    det = entries("detokenizer")
    optional = {k for k in det if k.startswith("video_tokenizer.") or k in O.SCHEDULE_BUFFERS}
    assert O.expected_detokenizer_shapes() == {k: tuple(v["shape"]) for k, v in det.items() if k not in optional}
    assert {k for k in optional if not k.startswith("video_tokenizer.")} == set(O.SCHEDULE_BUFFERS)
    # video_tokenizer.* is exactly a tokenizer checkpoint that includes the ViT
    tok = {**shapes(entries("tokenizer")), **shapes(entries("tokenizer_vit"))}
    assert shapes(det, "video_tokenizer.") == tok


def test_the_full_official_manifests_load_through_the_loaders_on_meta():
    tok_sd = meta_sd(shapes(entries("tokenizer")))
    vit_sd = meta_sd(shapes(entries("tokenizer_vit")))
    tok = O.load_tokenizer(tok_sd, device="meta")                       # without the ViT
    tok = O.load_tokenizer({**tok_sd, **vit_sd}, device="meta")        # with it (documented)
    assert tok.cfg.num_tokens == 64 and not tok.training
    vit = O.load_vit(vit_sd, device="meta")                             # from a tokenizer checkpoint
    clip_file = {k[len("vit_model.model."):]: v for k, v in vit_sd.items()}
    vit = O.load_vit(clip_file, device="meta")                          # the CLIP file's names
    assert vit.grid == 16 and vit.width == 1280
    det = O.load_detokenizer(meta_sd(shapes(entries("detokenizer"))), device="meta")
    assert det.first_stage_model.config.block_out_channels == (128, 256, 512, 512)
    with torch.device("meta"):
        llm_sd = MistralForCausalLM(mistral_7b_config()).state_dict()
    agent = O.load_agent(meta_sd(shapes(entries("agent"))), dict(llm_sd), device="meta")
    assert agent.llm.config.vocab_size == 32262 and agent.output_resampler.k == 16


def test_parameter_report_matches_the_official_numbers():
    rows = {r["component"]: r for r in O.parameter_report(include_mini=False)}
    assert all(r["matches"] for r in rows.values()), rows
    assert {k: r["official"] for k, r in rows.items()} == O.OFFICIAL_PARAMETERS
    assert rows["vit_visual"]["full"] == 632_076_800 - 1280 * 1024  # no visual.proj
    assert rows["llm"]["full"] == 7_241_732_096 + 2 * 262 * 4096


def test_official_schedule_buffers_are_the_samplers_schedule():
    b = O.official_schedule_buffers()
    assert set(b) == set(O.SCHEDULE_BUFFERS) and all(v.shape == (1000,) for v in b.values())
    assert b["alphas_cumprod"][-1] == 0 and b["betas"][-1] == 1  # zero terminal SNR
    sched = diffusion.make_scheduler()
    assert (b["alphas_cumprod"] - sched.alphas_cumprod).abs().max() < 1e-6
    assert (b["sqrt_recip_alphas_cumprod"] == 0).all()  # official quirk: zeros


# ----------------------------------------------------------------------------- synthetic releases
@pytest.fixture(scope="module", params=S.FORMATS)
def release(request, tmp_path_factory):
    torch.manual_seed(0)
    return S.write_synthetic_release(tmp_path_factory.mktemp(request.param), fmt=request.param)


@pytest.fixture(scope="module")
def loaded(release):
    return O.load_release(release.root, list(O.COMPONENTS), configs=release.configs)


def assert_same(state: dict, expected: dict):
    assert sorted(state) == sorted(expected)
    bad = [k for k in expected if not torch.equal(state[k], expected[k].to(state[k].dtype))]
    assert bad == []


def test_round_trip_every_component_holds_the_written_tensors(release, loaded):
    sds = release.state_dicts
    assert_same(loaded.tokenizer.state_dict(), sds["tokenizer"])
    visual = {k[len("visual."):]: v for k, v in sds["clip"].items() if k.startswith("visual.")}
    assert_same(loaded.vit.vision.state_dict(), O.openclip_to_clip_vision(visual))
    for stage in ("stage1", "stage2"):
        det = loaded.detokenizers[stage].state_dict()
        own = {k: v for k, v in sds["detokenizer"].items() if k not in O.SCHEDULE_BUFFERS}
        ldm = {k: v for k, v in own.items() if k.startswith("first_stage_model.")}
        expected = {k: v for k, v in own.items() if k not in ldm}
        expected.update({"first_stage_model." + k: v
                         for k, v in convert_ldm_vae_checkpoint(ldm, release.configs.vae).items()})
        assert_same(det, expected)
    assert set(loaded.agents) == {"sft_gen", "sft_comp", "pretrain"}
    for agent in loaded.agents.values():
        state = agent.state_dict()
        assert_same({k: v for k, v in state.items() if not k.startswith("llm.")}, sds["agent"])
        assert_same(agent.llm.state_dict(), sds["llm"])
        assert agent.frame_token_ids.tolist() == tt.frame_token_ids(loaded.text_tokenizer, 4)
    modules = [loaded.tokenizer, loaded.vit, *loaded.detokenizers.values(), *loaded.agents.values()]
    assert not any(m.training for m in modules)
    assert all(p.dtype == torch.float32 for m in modules for p in m.parameters())


def test_loaded_modules_give_finite_deterministic_outputs(release, loaded):
    torch.manual_seed(0)
    frames = torch.rand(1, 5, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        tokens = loaded.tokenizer(loaded.vit(frames))
        assert tokens.shape == (1, 4, 8) and torch.isfinite(tokens).all()
        assert torch.equal(tokens, loaded.tokenizer(loaded.vit(frames)))
        det = loaded.detokenizers["stage2"]
        ctx = det.context(tokens)
        assert ctx.shape == (1, 6, 32)
        v = det.diffusion_model(torch.randn(1, 4, 3, 8, 8), torch.tensor([500]), ctx)
        assert v.shape == (1, 4, 3, 8, 8) and torch.isfinite(v).all()
        uncond = loaded.tokenizer(loaded.vit(torch.zeros(1, 5, 3, 16, 16)))  # official: all-zeros video

        def decode():
            return det.sample(tokens, uncond, frames=2, size=16, steps=2,
                              generator=torch.Generator().manual_seed(0))

        clip = decode()
        assert clip.shape == (1, 2, 3, 16, 16) and torch.isfinite(clip).all()
        assert torch.equal(clip, decode())
        agent, text = loaded.agents["sft_comp"], loaded.text_tokenizer
        ex = comprehension_example(text, "what shape is it?", num_tokens=4)
        ids = torch.tensor([ex["input_ids"]])
        out = agent(ids, torch.tensor([ex["attention_mask"]]), video_tokens=tokens)
        assert torch.isfinite(out.logits).all()
        prompt = torch.tensor([generation_prompt(text, "a red circle moves left")
                               + [tt.special_token_id(text, tt.VID_BOI_TOKEN)]])
        gen = agent.generate_video_tokens(prompt, sample=False)
        assert gen.shape == (1, 4, 8) and torch.equal(gen, agent.generate_video_tokens(prompt, sample=False))


def test_vit_conversion_reproduces_the_openclip_forward(release, loaded):
    """An OpenCLIP-style forward written from the OpenCLIP keys (fused in_proj in nn.MultiheadAttention)
    equals CLIPVisionModel on the converted weights: the q/k/v split and every name are right."""
    sd = {k[len("visual."):]: v for k, v in release.state_dicts["clip"].items() if k.startswith("visual.")}
    cfg = release.configs.vit
    W, heads = cfg.hidden_size, cfg.num_attention_heads
    frames = torch.rand(1, 5, 3, 16, 16) * 2 - 1
    x = clip_normalize(frames.flatten(0, 1))
    h = F.conv2d(x, sd["conv1.weight"], stride=cfg.patch_size).flatten(2).transpose(1, 2)
    h = torch.cat([sd["class_embedding"].expand(len(h), 1, W), h], 1) + sd["positional_embedding"]
    h = F.layer_norm(h, (W,), sd["ln_pre.weight"], sd["ln_pre.bias"])
    for i in range(cfg.num_hidden_layers):
        p = f"transformer.resblocks.{i}."
        mha = nn.MultiheadAttention(W, heads, batch_first=True)
        mha.load_state_dict({"in_proj_weight": sd[p + "attn.in_proj_weight"], "in_proj_bias": sd[p + "attn.in_proj_bias"],
                             "out_proj.weight": sd[p + "attn.out_proj.weight"], "out_proj.bias": sd[p + "attn.out_proj.bias"]})
        a = F.layer_norm(h, (W,), sd[p + "ln_1.weight"], sd[p + "ln_1.bias"])
        h = h + mha(a, a, a, need_weights=False)[0]
        m = F.layer_norm(h, (W,), sd[p + "ln_2.weight"], sd[p + "ln_2.bias"])
        m = F.linear(F.gelu(F.linear(m, sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"])),
                     sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"])
        h = h + m
    with torch.no_grad():
        feats = loaded.vit(frames)
        pooled = loaded.vit.vision(pixel_values=x).pooler_output
    assert torch.allclose(feats, h[:, 1:].reshape(1, 5, 16, W), atol=1e-5)
    ln_post = F.layer_norm(h[:, 0], (W,), sd["ln_post.weight"], sd["ln_post.bias"])
    assert torch.allclose(pooled, ln_post, atol=1e-5)


# ----------------------------------------------------------------------------- strictness
def test_tokenizer_error_lists_missing_unexpected_and_misshaped_keys(release):
    sd = dict(release.state_dicts["tokenizer"])
    del sd["temporal_encoder.ln_final.bias"]
    sd["temporal_encoder.extra"] = torch.zeros(2)
    sd["norm.weight"] = torch.zeros(7)
    with pytest.raises(O.OfficialCheckpointError) as err:
        O.load_tokenizer(sd, release.configs.tokenizer)
    e = err.value
    assert e.missing == ["temporal_encoder.ln_final.bias"] and e.unexpected == ["temporal_encoder.extra"]
    assert e.mismatched == [("norm.weight", (7,), (32,))]
    for text in ("1 missing, 1 unexpected, 1 mis-shaped", "temporal_encoder.ln_final.bias",
                 "temporal_encoder.extra", "norm.weight [7] in the file, expected [32]"):
        assert text in str(e)


def test_detokenizer_error_lists_every_problem_in_official_names(release):
    sd = dict(release.state_dicts["detokenizer_stage1"])
    del sd["first_stage_model.decoder.mid.attn_1.q.weight"]             # LDM name, not diffusers'
    sd["diffusion_model.out.2.bias"] = torch.zeros(5)
    sd["video_tokenizer.vit_model.model.visual.extra"] = torch.zeros(1)
    sd["betas"] = sd["betas"] * 1.01
    with pytest.raises(O.OfficialCheckpointError) as err:
        O.load_detokenizer(sd, release.configs.detokenizer, vae_config=release.configs.vae,
                           tokenizer_config=release.configs.tokenizer, vit_config=release.configs.vit)
    e = err.value
    assert e.missing == ["first_stage_model.decoder.mid.attn_1.q.weight"]
    assert e.unexpected == ["video_tokenizer.vit_model.model.visual.extra"]
    assert e.mismatched == [("diffusion_model.out.2.bias", (5,), (4,))]
    assert len(e.other) == 1 and "'betas'" in e.other[0]
    # without the value check the schedule is accepted (it is never loaded)
    sd["betas"] = release.state_dicts["detokenizer"]["betas"]
    with pytest.raises(O.OfficialCheckpointError) as err:
        O.load_detokenizer(sd, release.configs.detokenizer, vae_config=release.configs.vae,
                           tokenizer_config=release.configs.tokenizer, vit_config=release.configs.vit)
    assert err.value.other == []


def test_vit_agent_and_llm_errors(release):
    clip = dict(release.state_dicts["clip"])
    del clip["visual.ln_post.bias"]
    clip["visual.proj"] = torch.zeros(3, 3)
    clip["bogus"] = torch.zeros(1)
    with pytest.raises(O.OfficialCheckpointError) as err:
        O.load_vit(clip, release.configs.vit)
    assert (err.value.missing, err.value.unexpected) == (["visual.ln_post.bias"], ["bogus"])
    assert err.value.mismatched == [("visual.proj", (3, 3), (32, 16))]
    with pytest.raises(O.OfficialCheckpointError, match="no OpenCLIP vision tower"):
        O.load_vit(release.state_dicts["tokenizer"], release.configs.vit)
    heads = dict(release.state_dicts["agent"])
    heads["output_resampler.proj.2.weight"] = torch.zeros(4, 4)
    llm = dict(release.state_dicts["llm"])
    llm_config = release.llm_config
    with pytest.raises(O.OfficialCheckpointError, match="output_resampler.proj.2.weight"):
        O.load_agent(heads, llm, llm_config=llm_config, token_dim=8, num_tokens=4, num_gmm_kernel=2,
                     frame_token_ids=[5, 6, 7, 8])
    del llm["lm_head.weight"]
    with pytest.raises(O.OfficialCheckpointError, match="lm_head.weight") as err:
        O.load_llm(llm, llm_config)
    assert err.value.missing == ["lm_head.weight"]


def test_documented_exceptions_are_accepted_and_nothing_else(release):
    c, sds = release.configs, release.state_dicts
    stage1 = sds["detokenizer_stage1"]
    # the tokenizer a de-tokenizer checkpoint carries (what the official scripts actually run)
    tok = O.load_tokenizer(stage1, c.tokenizer, prefix="video_tokenizer.", vit_config=c.vit)
    assert_same(tok.state_dict(), sds["tokenizer"])
    # a tokenizer checkpoint with the ViT: checked, ignored; with half a ViT: refused
    with_vit = {k[len("video_tokenizer."):]: v for k, v in stage1.items() if k.startswith("video_tokenizer.")}
    O.load_tokenizer(with_vit, c.tokenizer, vit_config=c.vit)
    partial = {k: v for k, v in with_vit.items() if "resblocks.1." not in k}
    with pytest.raises(O.OfficialCheckpointError, match="vit_model.model.visual.transformer.resblocks.1"):
        O.load_tokenizer(partial, c.tokenizer, vit_config=c.vit)
    # the ViT from a de-tokenizer checkpoint
    vit = O.load_vit(stage1, c.vit)
    visual = {k[len("visual."):]: v for k, v in sds["clip"].items() if k.startswith("visual.")}
    assert_same(vit.vision.state_dict(), O.openclip_to_clip_vision(visual))
    # no schedule buffers: fine
    no_schedule = {k: v for k, v in sds["detokenizer"].items() if k not in O.SCHEDULE_BUFFERS}
    O.load_detokenizer(no_schedule, c.detokenizer, vae_config=c.vae)
    # old transformers saved RoPE frequencies: ignored
    llm = {**sds["llm"], "model.layers.0.self_attn.rotary_emb.inv_freq": torch.zeros(8)}
    O.load_llm(llm, release.llm_config)


# ----------------------------------------------------------------------------- files
def test_missing_file_names_the_file_and_the_layout(tmp_path):
    with pytest.raises(O.OfficialFileNotFoundError) as err:
        O.load_tokenizer(tmp_path / "Divot_tokenizer.bin")
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert str(tmp_path / "Divot_tokenizer.bin") in msg and "Divot_tokenizer_detokenizer/" in msg
    with pytest.raises(O.OfficialFileNotFoundError) as err:
        O.load_release(tmp_path)
    msg = str(err.value)
    for rel in (O.CLIP_FILE, O.TOKENIZER_FILE, *O.DETOKENIZER_FILES.values(), "Divot_sft_gen/llm/",
                "Divot_sft_comp/agent/pytorch_model.bin", "cvlm_mistral_instruct_tokenizer/"):
        assert rel in msg, rel
    assert "Divot_pretrain" not in msg.split("Expected layout")[0]  # not needed by the default tasks
    with pytest.raises(ValueError, match="unknown component"):
        O.load_release(tmp_path, ["everything"])


def test_release_subset_loads_only_what_it_needs(tmp_path):
    rel = S.write_synthetic_release(tmp_path, fmt="safetensors", agents=())
    r = O.load_release(tmp_path, ["reconstruction"], configs=rel.configs)
    assert set(r.detokenizers) == {"stage1"} and r.agents == {} and r.text_tokenizer is None
    with pytest.raises(O.OfficialFileNotFoundError, match="Divot_sft_gen/agent/pytorch_model.bin"):
        O.load_release(tmp_path, ["generation"], configs=rel.configs)


RAN = []


def _payload():
    RAN.append(True)
    return "pwned"


class Payload:
    def __reduce__(self):
        return (_payload, ())


def test_a_pickled_object_is_refused_and_never_run(tmp_path):
    path = tmp_path / "Divot_tokenizer.bin"
    torch.save({"norm.weight": torch.zeros(3), "payload": Payload()}, path)
    with pytest.raises(O.UnsafeCheckpointError, match="refusing to load"):
        O.load_tokenizer(path)
    assert RAN == []
    # weights_only lets plain Python values through: still not a state dict of tensors
    torch.save({"norm.weight": torch.zeros(3), "epoch": 3}, path)
    with pytest.raises(O.OfficialCheckpointError, match="'epoch' is a int"):
        O.load_tokenizer(path)


def test_state_dict_input_dtype_and_a_loaded_llm(release):
    c, sds = release.configs, release.state_dicts
    tok = O.load_tokenizer(dict(sds["tokenizer"]), c.tokenizer, dtype=torch.float16)
    assert {p.dtype for p in tok.parameters()} == {torch.float16}
    llm = O.load_llm(sds["llm"], release.llm_config)
    agent = O.load_agent(sds["agent"], llm, token_dim=8, num_tokens=4, num_gmm_kernel=2,
                         frame_token_ids=[10, 11, 12, 13], boi_token_id=8, eoi_token_id=9)
    assert agent.llm is llm and agent.frame_token_ids.tolist() == [10, 11, 12, 13]
    assert agent.input_resampler.proj[0].weight.dtype == torch.float32  # stored float16, loaded float32


def test_gpu_check_script_runs_in_its_reduced_configuration(monkeypatch, capsys):
    import runpy
    script = Path(__file__).parents[1] / "scripts" / "gpu_check.py"
    monkeypatch.setattr("sys.argv", ["gpu_check.py", "--reduced", "--device", "cpu", "--steps", "2"])
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "2. de-tokenizer: 2 DDIM steps" in out and "finite=False" not in out
    assert out.count("finite=True") == 4


def test_text_tokenizer_folder_errors(tmp_path):
    with pytest.raises(O.OfficialFileNotFoundError, match="text tokenizer folder"):
        O.load_text_tokenizer(tmp_path / "cvlm_mistral_instruct_tokenizer")
    # the official folder is probably SentencePiece-only (tokenizer.model): say what is needed
    (tmp_path / "tokenizer.model").write_bytes(b"\x00not a model")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    with pytest.raises(O.OfficialCheckpointError, match="sentencepiece"):
        O.load_text_tokenizer(tmp_path)
    # a tokenizer without Divot's tokens is refused
    tt.build_text_tokenizer(num_frame_tokens=2).save_pretrained(tmp_path / "few")
    with pytest.raises(ValueError, match="frame tokens"):
        O.load_text_tokenizer(tmp_path / "few", num_tokens=4)
