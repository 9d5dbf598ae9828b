#!/usr/bin/env python3
"""Acceptance sweep of the model loader and forward pass on random Llama 4
configurations nobody chose by hand, against Hugging Face transformers.

Each case draws a small random Llama4TextConfig (hidden size, heads and kv
heads with GQA ratio 1 and > 1, head_dim explicit or derived, layers, RoPE /
NoPE layers explicit or from no_rope_layer_interval, MoE layers explicit or
from interleave_moe_layer_step, 1..8 experts with top-1..3 routing, chunk 4..16
over sequences of several chunks, temperature tuning with a small floor_scale,
default or llama3 RoPE with random factors, QK-norm on/off, tied embeddings,
vocab and intermediate sizes that are not multiples of 32), builds it with
transformers' Llama4ForCausalLM (random weights, fixed torch seed), saves it
with save_pretrained (bf16, f16 or f32; sharded or not; or as the multimodal
Llama4ForConditionalGeneration wrapper with a tiny vision tower), reloads it
through transformers from that directory (so derivations are transformers'
own), and compares `tome score` (random micro-batch and thread count) on
random ids: all-position logits within 1e-3 x max|logit|. Two cases also
compare 16 greedy tokens of `tome generate --ids` with transformers'
generate(). One case runs `--weights int8` and compares it with transformers
on weights rounded the way tome's int8 rounds them (sizes not multiples of 32
stay unquantized). test_refusals_name_the_field: configurations transformers
refuses, or runs and tome does not support, must be refused by tome with a
message naming config.json and the field.

    TOME_RANDCFG_SEED=S TOME_RANDCFG_N=N .venv/bin/python3 tests/test_model_random_configs.py
    (TOME_RANDCFG_GREEDY_ALL=1 / TOME_RANDCFG_INT8_ALL=1: greedy / int8 on every case;
     TOME_RANDCFG_KEEP=DIR keeps failing checkpoints)

Defaults: a fixed seed and 10 cases (~10 s on 2 cores, most of it importing torch). Skips (exit 0 with a
reason) when torch / transformers cannot be imported.
"""
import json, os, random, shutil, sys, tempfile, time, warnings

import numpy as np

from tome_testlib import case, exit_code, run as _run

try:
    import torch
    import transformers
    from transformers import (Llama4Config, Llama4ForCausalLM, Llama4ForConditionalGeneration,
                              Llama4TextConfig)
except Exception as e:  # noqa: BLE001
    print(f"skipped: torch / transformers not importable ({type(e).__name__}: {e})")
    sys.exit(0)

torch.set_grad_enabled(False)
warnings.filterwarnings("ignore", message="Casting complex values")  # the vision tower's rotary buffer in .to()
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

SEED = int(os.environ.get("TOME_RANDCFG_SEED", "20261123"))
N = int(os.environ.get("TOME_RANDCFG_N", "10"))
GREEDY_ALL = bool(os.environ.get("TOME_RANDCFG_GREEDY_ALL"))  # greedy tokens on every case, not just two
INT8_ALL = bool(os.environ.get("TOME_RANDCFG_INT8_ALL"))  # --weights int8 on every case, not just one
KEEP = os.environ.get("TOME_RANDCFG_KEEP")  # a directory: keep the checkpoints of failing cases there
TOL = 1e-3


def run(*args, ok=True):
    return _run(*args, ok=ok, env=os.environ)


def draw(rng, idx):
    """One random configuration: (Llama4TextConfig kwargs, how to save and run it)."""
    n_heads = rng.choice([1, 2, 3, 4, 6, 8, 16])
    n_kv = rng.choice([d for d in range(1, n_heads + 1) if n_heads % d == 0])
    explicit_hd = rng.random() < 0.5
    if explicit_hd:
        head_dim = rng.choice([4, 6, 8, 12, 16, 24, 128] if n_heads <= 2 else [4, 6, 8, 12, 16, 24])
        hidden = rng.choice([16, 24, 40, 48, 56, 72, 88, 100])
    else:
        head_dim = rng.choice([4, 8, 10, 12, 16])
        hidden = n_heads * head_dim
        if hidden < 16:
            head_dim, hidden = 16, n_heads * 16
    n_layers = rng.randint(1, 5)
    big = rng.random() < 0.15  # large enough for the tiled / thread-split matmul paths
    if big:
        hidden = rng.choice([192, 256, 264, 320]) if explicit_hd else hidden
        n_layers = rng.randint(1, 3)
    cfg = dict(vocab_size=rng.randint(1000, 3000) if big else rng.randint(60, 700), hidden_size=hidden,
               intermediate_size=rng.randint(150, 400) if big else rng.randint(8, 130),
               intermediate_size_mlp=rng.randint(200, 600) if big else rng.randint(8, 200),
               num_hidden_layers=n_layers, num_attention_heads=n_heads, num_key_value_heads=n_kv,
               head_dim=head_dim,
               num_local_experts=rng.randint(1, 8), rms_norm_eps=rng.choice([1e-5, 1e-6, 1e-4]),
               use_qk_norm=rng.random() < 0.6, tie_word_embeddings=rng.random() < 0.3,
               attn_temperature_tuning=rng.random() < 0.7, floor_scale=rng.randint(1, 8),
               attn_scale=round(rng.uniform(0.05, 0.6), 3), max_position_embeddings=4096,
               bos_token_id=1, eos_token_id=rng.choice([2, [2, 3], [5]]))
    cfg["num_experts_per_tok"] = rng.randint(1, min(4, cfg["num_local_experts"]))
    if rng.random() < 0.5:
        cfg["num_experts_per_tok"] = 1
    chunk = rng.choice([4, 8, 8, 16, 96])
    cfg["attention_chunk_size"] = chunk
    if rng.random() < 0.5:
        cfg["no_rope_layers"] = [rng.randint(0, 1) for _ in range(n_layers)]
    else:
        cfg["no_rope_layer_interval"] = rng.randint(1, 5)
    if rng.random() < 0.4:
        cfg["moe_layers"] = sorted(rng.sample(range(n_layers), rng.randint(0, n_layers)))
    else:
        cfg["interleave_moe_layer_step"] = rng.randint(1, 3)
    theta = rng.choice([100.0, 10000.0, 500000.0])
    if rng.random() < 0.6:
        lo = rng.choice([0.5, 1.0, 2.0])
        cfg["rope_parameters"] = dict(rope_type="llama3", rope_theta=theta,
                                      factor=rng.choice([1.5, 2.0, 4.0, 8.0, 16.0]), low_freq_factor=lo,
                                      high_freq_factor=lo * rng.choice([1.5, 2.0, 4.0]),
                                      original_max_position_embeddings=rng.choice([16, 32, 64, 256, 1024]))
    else:
        cfg["rope_parameters"] = dict(rope_type="default", rope_theta=theta)
    run_opts = dict(
        dtype=rng.choice(["bfloat16", "bfloat16", "float32", "float16"]),
        shard=rng.random() < 0.35,
        wrapper=rng.random() < 0.25,
        seq=rng.randint(min(2 * chunk + 1, 40), min(5 * chunk + 3, 72)),
        ubatch=rng.choice([1, 3, chunk - 1, chunk, chunk + 1, 512]),
        threads=rng.choice([1, 2, 2, 3]),
        tt_as_int=rng.random() < 0.3,          # attn_temperature_tuning written as an int, as Scout does
        drop_derived=rng.random() < 0.5,       # delete no_rope_layers / moe_layers / layer_types from config.json
        hd_derived=not explicit_hd,            # head_dim: null in config.json (tome derives hidden / heads)
        std=rng.choice([0.08, 0.15, 0.25]),
        rope_style=rng.choice(["parameters", "parameters", "legacy_type", "legacy_rope_type"]),
        drop_orig=rng.random() < 0.25,         # llama3 without original_max_position_embeddings
        mixed_dtypes=rng.random() < 0.3,       # every tensor of the files in its own dtype (bf16 / f16 / f32)
    )
    return cfg, run_opts


def randomize(model, gen, std):
    for name, p in model.named_parameters():
        if name.endswith("norm.weight") or "layernorm" in name:
            p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
        else:
            p.copy_(std * torch.randn(p.shape, generator=gen))


def build(cfg_kwargs, opts, seed, out):
    """Saves a random checkpoint to out; returns the transformers model that reloaded it (f32, eager)."""
    dtype = getattr(torch, opts["dtype"])
    tcfg = Llama4TextConfig(**cfg_kwargs)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    shard = "40KB" if opts["shard"] else "50GB"
    if opts["wrapper"]:
        vis = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
                   vision_output_dim=16, image_size=28, patch_size=14, projector_input_dim=16,
                   projector_output_dim=cfg_kwargs["hidden_size"])
        mcfg = Llama4Config(text_config=tcfg.to_dict(), vision_config=vis,
                            tie_word_embeddings=tcfg.tie_word_embeddings)
        model = Llama4ForConditionalGeneration(mcfg).to(torch.float32)
    else:
        model = Llama4ForCausalLM(tcfg).to(torch.float32)
    randomize(model, gen, opts["std"])
    if tcfg.tie_word_embeddings:
        model.tie_weights()
    model.to(dtype).save_pretrained(out, max_shard_size=shard)
    cpath = os.path.join(out, "config.json")
    conf = json.load(open(cpath))
    text = conf["text_config"] if opts["wrapper"] else conf
    if opts["drop_derived"]:
        # what a hand-written config.json looks like: transformers and tome must derive these (or take
        # transformers' defaults: head_dim 128, num_key_value_heads 8 when absent)
        for k in ("layer_types",) + (("no_rope_layers",) if "no_rope_layers" not in cfg_kwargs else ()) + \
                 (("moe_layers",) if "moe_layers" not in cfg_kwargs else ()):
            text.pop(k, None)
        if text["head_dim"] == 128:
            del text["head_dim"]
        if text["num_key_value_heads"] == 8:
            del text["num_key_value_heads"]
    rp = text.get("rope_parameters")
    if rp and opts["rope_style"] != "parameters":
        # what older files (Scout's) hold: rope_theta at the top, rope_scaling with "type" or "rope_type"
        text.pop("rope_parameters")
        text["rope_theta"] = rp.pop("rope_theta")
        if rp["rope_type"] == "default":
            text["rope_scaling"] = None
        else:
            if opts["rope_style"] == "legacy_type":
                rp["type"] = rp.pop("rope_type")
            text["rope_scaling"] = rp
    rs = text.get("rope_parameters") or text.get("rope_scaling")
    if rs and opts["drop_orig"]:
        # transformers then takes max_position_embeddings as the original context
        rs.pop("original_max_position_embeddings", None)
    json.dump(conf, open(cpath, "w"), indent=1)
    if opts["mixed_dtypes"]:
        from safetensors.torch import load_file, save_file
        g = random.Random(seed)
        for f in sorted(os.listdir(out)):
            if f.endswith(".safetensors"):
                sd = load_file(os.path.join(out, f))
                sd = {k: v.to(g.choice([torch.bfloat16, torch.float16, torch.float32])).contiguous()
                      for k, v in sd.items()}
                save_file(sd, os.path.join(out, f), metadata={"format": "pt"})
    cls = Llama4ForConditionalGeneration if opts["wrapper"] else Llama4ForCausalLM
    ref = cls.from_pretrained(out, dtype=torch.float32, attn_implementation="eager")
    ref.eval()
    if opts["tt_as_int"]:
        # Scout's config.json has "attn_temperature_tuning": 4; transformers 5 refuses an int, so the
        # reference was loaded first; tome must read the int as on / 0 as off
        text["attn_temperature_tuning"] = 4 if text["attn_temperature_tuning"] else 0
    if opts["hd_derived"]:
        # null head_dim / num_key_value_heads: older transformers derive hidden / heads and num_attention_heads,
        # transformers 5's strict config refuses a null (so the reference was loaded with the explicit values)
        text["head_dim"] = None
        if text.get("num_key_value_heads") == text["num_attention_heads"]:
            text["num_key_value_heads"] = None
    json.dump(conf, open(cpath, "w"), indent=1)
    for f in ("generation_config.json",):
        if os.path.exists(os.path.join(out, f)):
            os.remove(os.path.join(out, f))
    return ref, tcfg


def describe(cfg, opts, tcfg):
    rope = cfg["rope_parameters"]
    r = "llama3(f=%g,lo=%g,hi=%g,orig=%d)" % (rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"],
                                             rope["original_max_position_embeddings"]) \
        if rope["rope_type"] == "llama3" else "default"
    return (f"V{cfg['vocab_size']} H{cfg['hidden_size']} L{cfg['num_hidden_layers']} heads {cfg['num_attention_heads']}/"
            f"{cfg['num_key_value_heads']} hd {tcfg.head_dim}{'(null)' if opts['hd_derived'] else ''} "
            f"I{cfg['intermediate_size']}/{cfg['intermediate_size_mlp']} E{cfg['num_local_experts']} "
            f"k{cfg['num_experts_per_tok']} rope-layers {tcfg.no_rope_layers} moe {tcfg.moe_layers} "
            f"chunk {cfg['attention_chunk_size']} tt {cfg['attn_temperature_tuning']}"
            f"{'(int)' if opts['tt_as_int'] else ''} fs {cfg['floor_scale']} qk {cfg['use_qk_norm']} "
            f"tie {cfg['tie_word_embeddings']} rope {r} theta {rope['rope_theta']:g} | {opts['dtype']}"
            f"{' sharded' if opts['shard'] else ''}{' wrapper' if opts['wrapper'] else ''}"
            f"{' derived' if opts['drop_derived'] else ''}{' mixed' if opts['mixed_dtypes'] else ''} "
            f"rope-style {opts['rope_style']}{' no-orig' if opts['drop_orig'] else ''} seq {opts['seq']} ubatch {opts['ubatch']} "
            f"threads {opts['threads']} std {opts['std']}")


def q8_dequant(w, axis):
    """tome's int8 (model/quant.c): groups of 32 along the input axis, d = max|x| / 127 in f32,
    q = round half away from zero of x * (1 / d), clamped to +-127; returns q * d."""
    x = w.detach().float().movedim(axis, -1)
    g = x.reshape(*x.shape[:-1], x.shape[-1] // 32, 32)
    d = g.abs().amax(-1, keepdim=True) / 127.0
    v = g * torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    q = torch.where(v >= 0, torch.floor(v + 0.5), -torch.floor(0.5 - v)).clamp(-127, 127)
    return (q * d).reshape(x.shape).movedim(-1, axis)


def quantize_like_tome_int8(model):
    """In place: every matmul weight tome quantizes with --weights int8 (input size a multiple of 32;
    not the router, not the embedding; a tied lm_head gets its own quantized copy)."""
    lm = model.get_output_embeddings()
    emb = model.get_input_embeddings()
    if lm.weight.data_ptr() == emb.weight.data_ptr():
        lm.weight = torch.nn.Parameter(emb.weight.detach().clone())
    n = 0
    for name, p in model.named_parameters():
        if "vision" in name or "projector" in name or "router" in name or "embed_tokens" in name or \
                "norm" in name:
            continue
        axis = 1 if name.endswith(("experts.gate_up_proj", "experts.down_proj")) else -1
        if p.shape[axis] % 32 == 0:
            p.copy_(q8_dequant(p, axis))
            n += 1
    return n


def ref_greedy(ref, prompt, n, eos):
    out = ref.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False, eos_token_id=eos,
                       pad_token_id=0, attention_mask=torch.ones(1, len(prompt), dtype=torch.long))
    toks = out[0, len(prompt):].tolist()
    # the smallest top-1/top-2 gap along the path (a near-tie may fairly go either way)
    seq = prompt + toks
    lg = ref(torch.tensor([seq[:-1]]), use_cache=False).logits[0, len(prompt) - 1:]
    top2 = torch.topk(lg, 2, dim=-1).values
    return toks, (top2[:, 0] - top2[:, 1]).tolist(), float(lg.abs().max())


failures = []
int8_done = False


def one_case(i, rng, tmp):
    cfg, opts = draw(rng, i)
    seed = rng.randint(0, 1 << 30)
    out = os.path.join(tmp, f"case{i}")
    ref, tcfg = build(cfg, opts, seed, out)
    desc = describe(cfg, opts, tcfg)
    ids = [rng.randrange(cfg["vocab_size"]) for _ in range(opts["seq"])]
    want = ref(torch.tensor([ids]), use_cache=False).logits[0].float().numpy()
    npy = os.path.join(tmp, f"case{i}.npy")
    p = run("score", "--model", out, "--ids", ",".join(map(str, ids)), "--logits-out", npy,
            "--ubatch", str(opts["ubatch"]), "--threads", str(opts["threads"]), ok=False)
    if p.returncode != 0:
        return f"case {i}: tome score failed (exit {p.returncode}): {p.stderr.strip()}\n    {desc}", out
    got = np.load(npy)
    if got.shape != want.shape:
        return f"case {i}: logits shape {got.shape} != {want.shape}\n    {desc}", out
    err = float(np.abs(got - want).max() / np.abs(want).max())
    print(f"case {i}: max err {err:.2e} x max|logit| ({np.abs(want).max():.2f})  {desc}")
    if not err <= TOL:
        rows = np.abs(got - want).max(axis=1) / np.abs(want).max()
        bad = [int(r) for r in np.nonzero(rows > TOL)[0][:8]]
        return f"case {i}: logits differ: error {err:.3e} > {TOL}; first bad positions {bad}\n    {desc}", out
    if i < 2 or GREEDY_ALL:
        eos = cfg["eos_token_id"]
        eos_l = eos if isinstance(eos, list) else [eos]
        prompt = ids[: max(3, opts["seq"] // 3)]
        toks, gaps, mx = ref_greedy(ref, prompt, 16, eos_l)
        p = run("generate", "--model", out, "--ids", ",".join(map(str, prompt)), "-n", "16", "--print-ids",
                "--threads", str(opts["threads"]), "--ubatch", str(opts["ubatch"]), ok=False)
        if p.returncode != 0:
            return f"case {i}: tome generate failed (exit {p.returncode}): {p.stderr.strip()}\n    {desc}", out
        mine = [int(x) for x in p.stdout.split()]
        if mine != toks:
            k = next((j for j in range(min(len(mine), len(toks))) if mine[j] != toks[j]), min(len(mine), len(toks)))
            if not (k < len(gaps) and gaps[k] < 1e-4 * mx):  # not a near-tie
                return f"case {i}: greedy differs at token {k}: tome {mine} transformers {toks}\n    {desc}", out
        print(f"case {i}: greedy {len(toks)} tokens identical (min top-2 gap {min(gaps):.2e})")
    global int8_done
    if INT8_ALL or (not int8_done and (cfg["hidden_size"] % 32 == 0 or i == N - 1)):
        int8_done = True
        p = run("score", "--model", out, "--ids", ",".join(map(str, ids)), "--logits-out", npy, "--weights", "int8",
                ok=False)
        if p.returncode != 0:
            return f"case {i}: tome score --weights int8 failed: {p.stderr.strip()}\n    {desc}", out
        q = np.load(npy)
        qerr = float(np.abs(q - want).max() / np.abs(want).max())
        # the same group-wise int8 rounding applied to transformers' weights must give tome's int8 logits
        n_q = quantize_like_tome_int8(ref)
        want_q = ref(torch.tensor([ids]), use_cache=False).logits[0].float().numpy()
        qerr_ref = float(np.abs(q - want_q).max() / np.abs(want_q).max())
        print(f"case {i}: --weights int8: {n_q} matrices quantized; max err {qerr_ref:.2e} x max|logit| vs "
              f"transformers on the same int8 weights ({qerr:.3f} vs the unquantized model)")
        if not qerr_ref <= TOL:
            return f"case {i}: int8 logits differ from int8-rounded transformers: {qerr_ref:.3e}\n    {desc}", out
    return None, out


@case
def test_random_configs_match_transformers():
    print(f"seed {SEED} ({N} cases; TOME_RANDCFG_SEED / TOME_RANDCFG_N to change), "
          f"transformers {transformers.__version__}, torch {torch.__version__}")
    rng = random.Random(SEED)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(N):
            try:
                msg, out = one_case(i, rng, tmp)
            except Exception as e:  # noqa: BLE001  (transformers refusing a drawn config is a test bug)
                msg, out = f"case {i}: {type(e).__name__}: {e}", None
            if msg:
                print("MISMATCH " + msg)
                failures.append(msg)
                if KEEP and out:
                    shutil.copytree(out, os.path.join(KEEP, f"seed{SEED}-case{i}"), dirs_exist_ok=True)
    print(f"{N} cases in {time.time() - t0:.1f} s")
    assert not failures, f"{len(failures)} of {N} cases failed:\n" + "\n".join(failures)


# config.json edits tome must refuse with a message naming config.json and the field: the first group
# transformers refuses too; the second it runs and tome does not support (a clear refusal, not wrong logits)
REFUSE = [
    (True, {"interleave_moe_layer_step": 0, "moe_layers": None}, "interleave_moe_layer_step"),
    (True, {"no_rope_layer_interval": 0, "no_rope_layers": None, "layer_types": None}, "no_rope_layer_interval"),
    (True, {"num_experts_per_tok": 5}, "num_experts_per_tok"),
    (True, {"num_key_value_heads": 3}, "num_key_value_heads"),
    (True, {"num_hidden_layers": 5}, "'no_rope_layers' has 4 entries for 5 layers"),
    (False, {"rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 2.0}}, "rope type 'yarn'"),
    (False, {"attention_bias": True}, "attention_bias"),
    (False, {"hidden_act": "gelu"}, "hidden_act 'gelu'"),
    (False, {"layer_types": ["full_attention"] * 4}, "'layer_types'[0] = 'full_attention'"),
]


@case
def test_refusals_name_the_field():
    src = os.path.join(os.environ.get("TOME_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..")),
                       "tests", "golden", "model", "chunked_gqa")
    base = json.load(open(os.path.join(src, "config.json")))
    with tempfile.TemporaryDirectory() as tmp:
        for f in os.listdir(src):
            if f.endswith(".safetensors"):
                os.symlink(os.path.join(src, f), os.path.join(tmp, f))
        hf_kw = lambda conf: {k: v for k, v in conf.items()  # noqa: E731
                              if k not in ("architectures", "transformers_version", "model_type", "dtype")}
        Llama4ForCausalLM(Llama4TextConfig(**hf_kw(base)))(torch.tensor([[1, 2, 3]]))  # the unedited one runs
        for hf_refuses, edit, needle in REFUSE:
            conf = dict(base)
            for k, v in edit.items():
                if v is None:
                    conf.pop(k, None)
                else:
                    conf[k] = v
            if hf_refuses:
                try:
                    m = Llama4ForCausalLM(Llama4TextConfig(**hf_kw(conf)))
                    m(torch.tensor([[1, 2, 3]]))
                    raise AssertionError(f"transformers accepted {edit}: the table is wrong")
                except AssertionError:
                    raise
                except Exception:  # noqa: BLE001
                    pass
            json.dump(conf, open(os.path.join(tmp, "config.json"), "w"))
            p = run("score", "--model", tmp, "--ids", "1,2,3", "--logits-out", os.path.join(tmp, "x.npy"), ok=False)
            assert p.returncode != 0, f"tome accepted {edit}"
            assert "config.json" in p.stderr and needle in p.stderr, (edit, p.stderr)
            print(f"refused {json.dumps(edit)} (transformers {'refuses too' if hf_refuses else 'runs it'}): "
                  f"{p.stderr.strip().split(': ', 2)[-1]}")


if __name__ == "__main__":
    sys.exit(exit_code())
