//! The forward passes, written op for op after transformers' modeling code (Llama/Mistral/Qwen2,
//! GPT-2, GPT-NeoX) so that fp32 logits agree with transformers to float rounding: the same
//! RMSNorm upcast, the same rope tables (computed in fp32, cast to the model dtype), the same
//! addition order in residuals, scaled-dot-product attention as transformers' default "sdpa".
//! Batch size 1, no padding, no attention mask other than causal (and Mistral's sliding window),
//! as the subnet evaluates (docs/references.md S§5, pitfall 2).
//!
//! Every activation has a rank fixed by construction ([1, T, H] hidden states, [1, H, T, D] heads,
//! [T, V] logits), so indexing `size()` cannot go out of bounds; shapes that depend on the
//! checkpoint are checked when the weights are taken.

use tch::{Device, Kind, Tensor};

use super::EvalError;
use super::config::{Activation, Gpt2Config, LlamaConfig, ModelConfig, NeoxConfig};
use super::weights::Weights;

type R<T> = Result<T, EvalError>;

/// A linear layer `y = x Wᵀ + b` (`nn.Linear`).
struct Linear {
    w: Tensor,
    b: Option<Tensor>,
}

impl Linear {
    fn load(w: &mut Weights, name: &str, out: i64, inp: i64, bias: bool) -> R<Self> {
        let weight = w.take(&format!("{name}.weight"), &[out, inp])?;
        let b = if bias {
            Some(w.take(&format!("{name}.bias"), &[out])?)
        } else {
            None
        };
        Ok(Self { w: weight, b })
    }

    fn forward(&self, x: &Tensor) -> R<Tensor> {
        Ok(x.f_linear(&self.w, self.b.as_ref())?)
    }
}

/// GPT-2's `Conv1D`: `addmm(b, x, W)` with W stored as [in, out].
struct Conv1D {
    w: Tensor,
    b: Tensor,
    out: i64,
}

impl Conv1D {
    fn load(w: &mut Weights, name: &str, inp: i64, out: i64) -> R<Self> {
        Ok(Self {
            w: w.take(&format!("{name}.weight"), &[inp, out])?,
            b: w.take(&format!("{name}.bias"), &[out])?,
            out,
        })
    }

    fn forward(&self, x: &Tensor) -> R<Tensor> {
        let mut size = x.size();
        let inp = size.last().copied().unwrap_or(0);
        let y = self.b.f_addmm(&x.f_reshape([-1, inp])?, &self.w)?;
        if let Some(last) = size.last_mut() {
            *last = self.out;
        }
        Ok(y.f_reshape(size.as_slice())?)
    }
}

struct LayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f64,
    n: i64,
}

impl LayerNorm {
    fn load(w: &mut Weights, name: &str, n: i64, eps: f64) -> R<Self> {
        Ok(Self {
            w: w.take(&format!("{name}.weight"), &[n])?,
            b: w.take(&format!("{name}.bias"), &[n])?,
            eps,
            n,
        })
    }

    fn forward(&self, x: &Tensor) -> R<Tensor> {
        Ok(x.f_layer_norm([self.n], Some(&self.w), Some(&self.b), self.eps, true)?)
    }
}

/// transformers `LlamaRMSNorm`: normalise in fp32, cast back, then scale.
struct RmsNorm {
    w: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn forward(&self, x: &Tensor) -> R<Tensor> {
        let dtype = x.kind();
        let h = x.f_to_dtype(Kind::Float, false, false)?;
        let var = h
            .f_pow_tensor_scalar(2)?
            .f_mean_dim([-1i64].as_slice(), true, None::<Kind>)?;
        let h = h.f_mul(&var.f_add_scalar(self.eps)?.f_rsqrt()?)?;
        Ok(self.w.f_mul(&h.f_to_dtype(dtype, false, false)?)?)
    }
}

fn activate(x: &Tensor, act: Activation) -> R<Tensor> {
    Ok(match act {
        Activation::Gelu => x.f_gelu("none")?,
        Activation::GeluPytorchTanh => x.f_gelu("tanh")?,
        // transformers NewGELUActivation:
        // 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
        Activation::GeluNew => {
            let inner = x.f_add(&x.f_pow_tensor_scalar(3.0)?.f_mul_scalar(0.044715)?)?;
            let t = inner
                .f_mul_scalar((2.0f64 / std::f64::consts::PI).sqrt())?
                .f_tanh()?;
            x.f_mul_scalar(0.5)?.f_mul(&t.f_add_scalar(1.0)?)?
        }
        Activation::Relu => x.f_relu()?,
    })
}

/// Rope tables as transformers builds them: `inv_freq = 1 / base^(arange(0, dim, 2) / dim)` in
/// fp32 (divided by the linear factor), `emb = cat(freqs, freqs)`, cos/sin cast to the model dtype.
/// Returns ([T, dim] cos, [T, dim] sin) for positions `offset..offset + t`.
fn rope_tables(
    dim: i64,
    theta: f64,
    linear_factor: f64,
    (offset, t): (i64, i64),
    kind: Kind,
    device: Device,
) -> R<(Tensor, Tensor)> {
    let exps = Tensor::f_arange_start_step(0i64, dim, 2, (Kind::Int64, device))?
        .f_to_dtype(Kind::Float, false, false)?
        .f_div_scalar(dim as f64)?;
    let mut inv_freq = Tensor::f_pow_scalar(theta, &exps)?.f_reciprocal()?;
    if linear_factor != 1.0 {
        inv_freq = inv_freq.f_div_scalar(linear_factor)?;
    }
    let pos = Tensor::f_arange_start(offset, offset + t, (Kind::Int64, device))?.f_to_dtype(
        Kind::Float,
        false,
        false,
    )?;
    let freqs = pos.f_outer(&inv_freq)?;
    let emb = Tensor::f_cat(&[&freqs, &freqs], -1)?;
    Ok((
        emb.f_cos()?.f_to_dtype(kind, false, false)?,
        emb.f_sin()?.f_to_dtype(kind, false, false)?,
    ))
}

/// `q * cos + rotate_half(q) * sin` on [1, H, T, dim].
fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> R<Tensor> {
    let d = x.size().last().copied().unwrap_or(0);
    let x1 = x.f_narrow(-1, 0, d / 2)?;
    let x2 = x.f_narrow(-1, d / 2, d - d / 2)?;
    let rotated = Tensor::f_cat(&[&x2.f_neg()?, &x1], -1)?;
    Ok(x.f_mul(cos)?.f_add(&rotated.f_mul(sin)?)?)
}

/// Scaled-dot-product attention on [1, H, Tq, D] queries and [1, KV, Tk, D] keys/values, the
/// queries being the last Tq positions (Tk − Tq earlier ones come from the KV cache). k, v may
/// have fewer heads: grouped-query attention, expanded as transformers' `repeat_kv`. Causal;
/// `window` adds Mistral's sliding window.
fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, window: Option<i64>) -> R<Tensor> {
    let heads = q.size()[1];
    let kv_heads = k.size()[1];
    let (mut k, mut v) = if kv_heads != heads {
        let rep = heads / kv_heads;
        (
            k.f_repeat_interleave_self_int(rep, 1, None)?,
            v.f_repeat_interleave_self_int(rep, 1, None)?,
        )
    } else {
        (k.shallow_clone(), v.shallow_clone())
    };
    let tq = q.size()[2];
    let tk = k.size()[2];
    let offset = tk - tq;
    let windowed = window.is_some_and(|w| tk > w);
    if offset == 0 && !windowed {
        return Ok(Tensor::f_scaled_dot_product_attention(
            q,
            &k,
            &v,
            None::<&Tensor>,
            0.0,
            true,
            scale,
            false,
        )?);
    }
    if tq == 1 {
        // One new token sees every cached key, or the last `window` of them.
        if let Some(w) = window
            && tk > w
        {
            k = k.f_narrow(2, tk - w, w)?;
            v = v.f_narrow(2, tk - w, w)?;
        }
        return Ok(Tensor::f_scaled_dot_product_attention(
            q,
            &k,
            &v,
            None::<&Tensor>,
            0.0,
            false,
            scale,
            false,
        )?);
    }
    // Query i (absolute position offset + i) sees key j iff j <= offset + i and, with a window,
    // offset + i - j < window.
    let ones = Tensor::f_ones([tq, tk], (Kind::Bool, q.device()))?;
    let mut mask = ones.f_tril(offset)?;
    if let Some(w) = window {
        mask = mask.f_logical_and(&ones.f_triu(offset - (w - 1))?)?;
    }
    Ok(Tensor::f_scaled_dot_product_attention(
        q,
        &k,
        &v,
        Some(&mask),
        0.0,
        false,
        scale,
        false,
    )?)
}

/// Keys and values of the positions already processed, per layer ([1, KV, T, D] each).
#[derive(Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: i64,
}

impl KvCache {
    /// Appends this step's keys and values for `layer`; returns all of them.
    fn update(&mut self, layer: usize, k: Tensor, v: Tensor) -> R<(Tensor, Tensor)> {
        if self.layers.len() <= layer {
            self.layers.resize_with(layer + 1, || None);
        }
        let (k, v) = match self.layers[layer].take() {
            Some((pk, pv)) => (Tensor::f_cat(&[&pk, &k], 2)?, Tensor::f_cat(&[&pv, &v], 2)?),
            None => (k, v),
        };
        self.layers[layer] = Some((k.shallow_clone(), v.shallow_clone()));
        Ok((k, v))
    }
}

/// [B, T, H*D] -> [B, H, T, D]
fn heads(x: &Tensor, n: i64, d: i64) -> R<Tensor> {
    let s = x.size();
    Ok(x.f_reshape([s[0], s[1], n, d])?.f_transpose(1, 2)?)
}

/// [B, H, T, D] -> [B, T, H*D]
fn merge(x: &Tensor) -> R<Tensor> {
    let s = x.size();
    Ok(x.f_transpose(1, 2)?
        .f_contiguous()?
        .f_reshape([s[0], s[2], s[1] * s[3]])?)
}

struct LlamaLayer {
    ln1: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln2: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
}

struct Llama {
    cfg: LlamaConfig,
    embed: Tensor,
    layers: Vec<LlamaLayer>,
    norm: RmsNorm,
    lm_head: Tensor,
}

impl Llama {
    fn load(cfg: &LlamaConfig, w: &mut Weights) -> R<Self> {
        let p = w.prefix_for(&["model.", ""], "embed_tokens.weight");
        let (h, i, hd) = (cfg.hidden_size, cfg.intermediate_size, cfg.head_dim);
        let embed = w.take(&format!("{p}embed_tokens.weight"), &[cfg.vocab_size, h])?;
        let mut layers = Vec::new();
        for l in 0..cfg.num_layers {
            let n = format!("{p}layers.{l}");
            layers.push(LlamaLayer {
                ln1: RmsNorm {
                    w: w.take(&format!("{n}.input_layernorm.weight"), &[h])?,
                    eps: cfg.rms_norm_eps,
                },
                q: Linear::load(
                    w,
                    &format!("{n}.self_attn.q_proj"),
                    cfg.num_heads * hd,
                    h,
                    cfg.qkv_bias,
                )?,
                k: Linear::load(
                    w,
                    &format!("{n}.self_attn.k_proj"),
                    cfg.num_kv_heads * hd,
                    h,
                    cfg.qkv_bias,
                )?,
                v: Linear::load(
                    w,
                    &format!("{n}.self_attn.v_proj"),
                    cfg.num_kv_heads * hd,
                    h,
                    cfg.qkv_bias,
                )?,
                o: Linear::load(
                    w,
                    &format!("{n}.self_attn.o_proj"),
                    h,
                    cfg.num_heads * hd,
                    cfg.o_bias,
                )?,
                ln2: RmsNorm {
                    w: w.take(&format!("{n}.post_attention_layernorm.weight"), &[h])?,
                    eps: cfg.rms_norm_eps,
                },
                gate: Linear::load(w, &format!("{n}.mlp.gate_proj"), i, h, cfg.mlp_bias)?,
                up: Linear::load(w, &format!("{n}.mlp.up_proj"), i, h, cfg.mlp_bias)?,
                down: Linear::load(w, &format!("{n}.mlp.down_proj"), h, i, cfg.mlp_bias)?,
            });
        }
        let norm = RmsNorm {
            w: w.take(&format!("{p}norm.weight"), &[h])?,
            eps: cfg.rms_norm_eps,
        };
        let lm_head = match w.take_opt("lm_head.weight", &[cfg.vocab_size, h])? {
            Some(t) if !cfg.tie_word_embeddings => t,
            _ if !cfg.tie_word_embeddings => {
                return Err(EvalError::MissingWeight {
                    name: "lm_head.weight".into(),
                    dir: w_dir(w),
                });
            }
            _ => embed.shallow_clone(),
        };
        Ok(Self {
            cfg: cfg.clone(),
            embed,
            layers,
            norm,
            lm_head,
        })
    }

    fn forward(&self, ids: &Tensor, cache: &mut KvCache) -> R<Tensor> {
        let c = &self.cfg;
        let t = ids.size()[1];
        let mut x = Tensor::f_embedding(&self.embed, ids, -1, false, false)?;
        let (cos, sin) = rope_tables(
            c.head_dim,
            c.rope_theta,
            c.rope_linear_factor,
            (cache.len, t),
            x.kind(),
            x.device(),
        )?;
        let scale = (c.head_dim as f64).powf(-0.5);
        for (i, l) in self.layers.iter().enumerate() {
            let residual = x.shallow_clone();
            let h = l.ln1.forward(&x)?;
            let q = apply_rope(
                &heads(&l.q.forward(&h)?, c.num_heads, c.head_dim)?,
                &cos,
                &sin,
            )?;
            let k = apply_rope(
                &heads(&l.k.forward(&h)?, c.num_kv_heads, c.head_dim)?,
                &cos,
                &sin,
            )?;
            let v = heads(&l.v.forward(&h)?, c.num_kv_heads, c.head_dim)?;
            let (k, v) = cache.update(i, k, v)?;
            let a =
                l.o.forward(&merge(&attention(&q, &k, &v, scale, c.sliding_window)?)?)?;
            x = residual.f_add(&a)?;
            let residual = x.shallow_clone();
            let h = l.ln2.forward(&x)?;
            let m = l
                .down
                .forward(&l.gate.forward(&h)?.f_silu()?.f_mul(&l.up.forward(&h)?)?)?;
            x = residual.f_add(&m)?;
        }
        cache.len += t;
        Ok(self
            .norm
            .forward(&x)?
            .f_linear(&self.lm_head, None::<&Tensor>)?)
    }
}

fn w_dir(w: &Weights) -> std::path::PathBuf {
    w.dir().to_path_buf()
}

struct Gpt2Layer {
    ln1: LayerNorm,
    c_attn: Conv1D,
    c_proj: Conv1D,
    ln2: LayerNorm,
    c_fc: Conv1D,
    mlp_proj: Conv1D,
}

struct Gpt2 {
    cfg: Gpt2Config,
    wte: Tensor,
    wpe: Tensor,
    layers: Vec<Gpt2Layer>,
    ln_f: LayerNorm,
    lm_head: Tensor,
}

impl Gpt2 {
    fn load(cfg: &Gpt2Config, w: &mut Weights) -> R<Self> {
        let p = w.prefix_for(&["transformer.", ""], "wte.weight");
        let (e, eps) = (cfg.n_embd, cfg.layer_norm_epsilon);
        let wte = w.take(&format!("{p}wte.weight"), &[cfg.vocab_size, e])?;
        let wpe = w.take(&format!("{p}wpe.weight"), &[cfg.n_positions, e])?;
        let mut layers = Vec::new();
        for l in 0..cfg.n_layer {
            let n = format!("{p}h.{l}");
            layers.push(Gpt2Layer {
                ln1: LayerNorm::load(w, &format!("{n}.ln_1"), e, eps)?,
                c_attn: Conv1D::load(w, &format!("{n}.attn.c_attn"), e, 3 * e)?,
                c_proj: Conv1D::load(w, &format!("{n}.attn.c_proj"), e, e)?,
                ln2: LayerNorm::load(w, &format!("{n}.ln_2"), e, eps)?,
                c_fc: Conv1D::load(w, &format!("{n}.mlp.c_fc"), e, cfg.n_inner)?,
                mlp_proj: Conv1D::load(w, &format!("{n}.mlp.c_proj"), cfg.n_inner, e)?,
            });
        }
        let ln_f = LayerNorm::load(w, &format!("{p}ln_f"), e, eps)?;
        let lm_head = match w.take_opt("lm_head.weight", &[cfg.vocab_size, e])? {
            Some(t) if !cfg.tie_word_embeddings => t,
            _ if !cfg.tie_word_embeddings => {
                return Err(EvalError::MissingWeight {
                    name: "lm_head.weight".into(),
                    dir: w_dir(w),
                });
            }
            _ => wte.shallow_clone(),
        };
        Ok(Self {
            cfg: cfg.clone(),
            wte,
            wpe,
            layers,
            ln_f,
            lm_head,
        })
    }

    fn forward(&self, ids: &Tensor, cache: &mut KvCache) -> R<Tensor> {
        let c = &self.cfg;
        let t = ids.size()[1];
        let pos = Tensor::f_arange_start(cache.len, cache.len + t, (Kind::Int64, ids.device()))?
            .f_unsqueeze(0)?;
        let mut x = Tensor::f_embedding(&self.wte, ids, -1, false, false)?
            .f_add(&Tensor::f_embedding(&self.wpe, &pos, -1, false, false)?)?;
        let hd = c.n_embd / c.n_head;
        for (idx, l) in self.layers.iter().enumerate() {
            let mut scale = if c.scale_attn_weights {
                (hd as f64).powf(-0.5)
            } else {
                1.0
            };
            if c.scale_attn_by_inverse_layer_idx {
                scale /= (idx + 1) as f64;
            }
            let residual = x.shallow_clone();
            let qkv = l.c_attn.forward(&l.ln1.forward(&x)?)?;
            let parts = qkv.f_split(c.n_embd, 2)?;
            let [q, k, v] = parts.as_slice() else {
                return Err(EvalError::Torch {
                    message: "c_attn output did not split in three".into(),
                });
            };
            let (k, v) = cache.update(idx, heads(k, c.n_head, hd)?, heads(v, c.n_head, hd)?)?;
            let a = attention(&heads(q, c.n_head, hd)?, &k, &v, scale, None)?;
            x = l.c_proj.forward(&merge(&a)?)?.f_add(&residual)?;
            let residual = x.shallow_clone();
            let m = l.mlp_proj.forward(&activate(
                &l.c_fc.forward(&l.ln2.forward(&x)?)?,
                c.activation,
            )?)?;
            x = residual.f_add(&m)?;
        }
        cache.len += t;
        Ok(self
            .ln_f
            .forward(&x)?
            .f_linear(&self.lm_head, None::<&Tensor>)?)
    }
}

struct NeoxLayer {
    ln1: LayerNorm,
    ln2: LayerNorm,
    qkv: Linear,
    dense: Linear,
    fc_in: Linear,
    fc_out: Linear,
}

struct Neox {
    cfg: NeoxConfig,
    embed: Tensor,
    layers: Vec<NeoxLayer>,
    ln_f: LayerNorm,
    embed_out: Tensor,
}

impl Neox {
    fn load(cfg: &NeoxConfig, w: &mut Weights) -> R<Self> {
        let (h, eps, b) = (cfg.hidden_size, cfg.layer_norm_eps, cfg.attention_bias);
        let embed = w.take("gpt_neox.embed_in.weight", &[cfg.vocab_size, h])?;
        let mut layers = Vec::new();
        for l in 0..cfg.num_layers {
            let n = format!("gpt_neox.layers.{l}");
            layers.push(NeoxLayer {
                ln1: LayerNorm::load(w, &format!("{n}.input_layernorm"), h, eps)?,
                ln2: LayerNorm::load(w, &format!("{n}.post_attention_layernorm"), h, eps)?,
                qkv: Linear::load(w, &format!("{n}.attention.query_key_value"), 3 * h, h, b)?,
                dense: Linear::load(w, &format!("{n}.attention.dense"), h, h, b)?,
                fc_in: Linear::load(
                    w,
                    &format!("{n}.mlp.dense_h_to_4h"),
                    cfg.intermediate_size,
                    h,
                    true,
                )?,
                fc_out: Linear::load(
                    w,
                    &format!("{n}.mlp.dense_4h_to_h"),
                    h,
                    cfg.intermediate_size,
                    true,
                )?,
            });
        }
        let ln_f = LayerNorm::load(w, "gpt_neox.final_layer_norm", h, eps)?;
        let embed_out = match w.take_opt("embed_out.weight", &[cfg.vocab_size, h])? {
            Some(t) if !cfg.tie_word_embeddings => t,
            _ if !cfg.tie_word_embeddings => {
                return Err(EvalError::MissingWeight {
                    name: "embed_out.weight".into(),
                    dir: w_dir(w),
                });
            }
            _ => embed.shallow_clone(),
        };
        Ok(Self {
            cfg: cfg.clone(),
            embed,
            layers,
            ln_f,
            embed_out,
        })
    }

    fn attn(
        &self,
        (i, l): (usize, &NeoxLayer),
        x: &Tensor,
        (cos, sin): (&Tensor, &Tensor),
        cache: &mut KvCache,
    ) -> R<Tensor> {
        let c = &self.cfg;
        let (b, t) = (x.size()[0], x.size()[1]);
        // [B, T, H, 3D] -> [B, H, T, 3D] -> q, k, v (per-head interleaved, as transformers splits).
        let qkv = l
            .qkv
            .forward(x)?
            .f_reshape([b, t, c.num_heads, 3 * c.head_dim])?
            .f_transpose(1, 2)?;
        let parts = qkv.f_split(c.head_dim, -1)?;
        let [q, k, v] = parts.as_slice() else {
            return Err(EvalError::Torch {
                message: "query_key_value output did not split in three".into(),
            });
        };
        let rd = c.rotary_ndims;
        let rot = |x: &Tensor| -> R<Tensor> {
            if rd == c.head_dim {
                return apply_rope(x, cos, sin);
            }
            let r = apply_rope(&x.f_narrow(-1, 0, rd)?, cos, sin)?;
            Ok(Tensor::f_cat(
                &[&r, &x.f_narrow(-1, rd, c.head_dim - rd)?],
                -1,
            )?)
        };
        let (k, v) = cache.update(i, rot(k)?, v.shallow_clone())?;
        let a = attention(&rot(q)?, &k, &v, (c.head_dim as f64).powf(-0.5), None)?;
        l.dense.forward(&merge(&a)?)
    }

    fn forward(&self, ids: &Tensor, cache: &mut KvCache) -> R<Tensor> {
        let c = &self.cfg;
        let t = ids.size()[1];
        let mut x = Tensor::f_embedding(&self.embed, ids, -1, false, false)?;
        let (cos, sin) = rope_tables(
            c.rotary_ndims,
            c.rope_theta,
            1.0,
            (cache.len, t),
            x.kind(),
            x.device(),
        )?;
        for (i, l) in self.layers.iter().enumerate() {
            let a = self.attn((i, l), &l.ln1.forward(&x)?, (&cos, &sin), cache)?;
            x = if c.use_parallel_residual {
                let m = l.fc_out.forward(&activate(
                    &l.fc_in.forward(&l.ln2.forward(&x)?)?,
                    c.activation,
                )?)?;
                m.f_add(&a)?.f_add(&x)?
            } else {
                let a = a.f_add(&x)?;
                let m = l.fc_out.forward(&activate(
                    &l.fc_in.forward(&l.ln2.forward(&a)?)?,
                    c.activation,
                )?)?;
                m.f_add(&a)?
            };
        }
        cache.len += t;
        Ok(self
            .ln_f
            .forward(&x)?
            .f_linear(&self.embed_out, None::<&Tensor>)?)
    }
}

enum Arch {
    Llama(Llama),
    Gpt2(Gpt2),
    Neox(Neox),
}

/// A loaded causal language model.
pub struct Model {
    arch: Arch,
    vocab_size: i64,
    device: Device,
}

impl Model {
    /// Builds the model for `cfg` from the checkpoint in `weights` (shapes checked against `cfg`).
    pub fn load(cfg: &ModelConfig, weights: &mut Weights, device: Device) -> R<Self> {
        let (arch, vocab_size) = match cfg {
            ModelConfig::Llama(c) => (Arch::Llama(Llama::load(c, weights)?), c.vocab_size),
            ModelConfig::Gpt2(c) => (Arch::Gpt2(Gpt2::load(c, weights)?), c.vocab_size),
            ModelConfig::GptNeox(c) => (Arch::Neox(Neox::load(c, weights)?), c.vocab_size),
        };
        Ok(Self {
            arch,
            vocab_size,
            device,
        })
    }

    /// The vocabulary size of the logits.
    pub fn vocab_size(&self) -> i64 {
        self.vocab_size
    }

    /// Logits [T, V] in the model dtype for one sequence of token ids (callers check the ids are
    /// below `vocab_size`).
    pub fn logits(&self, ids: &[i64]) -> R<Tensor> {
        self.step(ids, &mut KvCache::default())
    }

    /// Logits [B, T, V] for several sequences of the same length, read together: every row
    /// attends only to itself, causally, so each row's logits are those [`Model::logits`] gives
    /// it alone (the test suite checks they are bit-identical on the CPU).
    pub fn logits_batch(&self, rows: &[&[i64]]) -> R<Tensor> {
        let t = rows.first().map_or(0, |r| r.len());
        if rows.iter().any(|r| r.len() != t) {
            return Err(EvalError::Torch {
                message: "a batch mixes sequence lengths".into(),
            });
        }
        let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        let ids = Tensor::f_from_slice(&flat)?
            .f_to(self.device)?
            .f_reshape([rows.len() as i64, t as i64])?;
        let mut cache = KvCache::default();
        match &self.arch {
            Arch::Llama(m) => m.forward(&ids, &mut cache),
            Arch::Gpt2(m) => m.forward(&ids, &mut cache),
            Arch::Neox(m) => m.forward(&ids, &mut cache),
        }
    }

    /// Logits [T, V] for `ids` following the positions already in `cache`, which it extends.
    pub fn step(&self, ids: &[i64], cache: &mut KvCache) -> R<Tensor> {
        let ids = Tensor::f_from_slice(ids)?
            .f_to(self.device)?
            .f_unsqueeze(0)?;
        let logits = match &self.arch {
            Arch::Llama(m) => m.forward(&ids, cache)?,
            Arch::Gpt2(m) => m.forward(&ids, cache)?,
            Arch::Neox(m) => m.forward(&ids, cache)?,
        };
        Ok(logits.f_squeeze_dim(0)?)
    }
}
