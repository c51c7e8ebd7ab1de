//! Parses a Hugging Face `config.json` into the few numbers the native evaluator's forward passes
//! need, and refuses every option it does not implement instead of silently computing something
//! else. Both the transformers 4.x layout (`rope_theta`, `rope_scaling`, `rotary_pct`,
//! `rotary_emb_base`) and the 5.x layout (`rope_parameters`) are read.

use std::path::Path;

use serde_json::{Map, Value};

use super::EvalError;

/// The architectures the native evaluator implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `LlamaForCausalLM`, `MistralForCausalLM`, `Qwen2ForCausalLM`.
    Llama,
    /// `GPT2LMHeadModel`.
    Gpt2,
    /// `GPTNeoXForCausalLM` (Pythia, RedPajama-INCITE).
    GptNeox,
}

/// Llama-family settings (Llama, Mistral, Qwen2).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_layers: i64,
    pub num_heads: i64,
    pub num_kv_heads: i64,
    pub head_dim: i64,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// Positions are divided by this ("linear" rope scaling); 1.0 without scaling.
    pub rope_linear_factor: f64,
    /// Bias on q, k, v (Qwen2 always; Llama with `attention_bias`).
    pub qkv_bias: bool,
    /// Bias on o_proj (Llama with `attention_bias`).
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub tie_word_embeddings: bool,
    /// Mistral's sliding-window attention: a key is visible when `query - key < window`.
    pub sliding_window: Option<i64>,
}

/// GPT-2 settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpt2Config {
    pub vocab_size: i64,
    pub n_embd: i64,
    pub n_layer: i64,
    pub n_head: i64,
    pub n_positions: i64,
    pub n_inner: i64,
    pub layer_norm_epsilon: f64,
    pub activation: Activation,
    pub scale_attn_weights: bool,
    pub scale_attn_by_inverse_layer_idx: bool,
    pub tie_word_embeddings: bool,
}

/// GPT-NeoX settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NeoxConfig {
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_layers: i64,
    pub num_heads: i64,
    pub head_dim: i64,
    /// `int(head_dim * rotary_pct)`, as transformers computes it.
    pub rotary_ndims: i64,
    pub rope_theta: f64,
    pub layer_norm_eps: f64,
    pub use_parallel_residual: bool,
    pub attention_bias: bool,
    pub activation: Activation,
    pub tie_word_embeddings: bool,
}

/// The MLP activations implemented (transformers `ACT2FN` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: the exact erf form.
    Gelu,
    /// `gelu_new`: transformers' `NewGELUActivation`, the tanh formula written out.
    GeluNew,
    /// `gelu_pytorch_tanh`: `F.gelu(x, approximate="tanh")`.
    GeluPytorchTanh,
    Relu,
}

/// A parsed `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    Llama(LlamaConfig),
    Gpt2(Gpt2Config),
    GptNeox(NeoxConfig),
}

/// What a config.json says besides the architecture: the end-of-text token lm-eval uses for an
/// empty context.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedConfig {
    pub model: ModelConfig,
    /// The `architectures[0]` or `model_type` the config was recognised by.
    pub architecture: String,
    pub eos_token_id: Option<i64>,
    /// The longest sequence a model with learned positions (GPT-2) accepts.
    pub max_positions: Option<i64>,
}

struct Fields<'a> {
    path: &'a Path,
    map: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn err(&self, message: String) -> EvalError {
        EvalError::Config {
            path: self.path.to_path_buf(),
            message,
        }
    }

    fn int(&self, key: &str) -> Result<i64, EvalError> {
        self.opt_int(key)?
            .ok_or_else(|| self.err(format!("missing integer field `{key}`")))
    }

    fn opt_int(&self, key: &str) -> Result<Option<i64>, EvalError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_i64() {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(self.err(format!("field `{key}` must be a positive integer, got {v}"))),
            },
        }
    }

    fn float_or(&self, key: &str, default: f64) -> Result<f64, EvalError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.err(format!("field `{key}` must be a number, got {v}"))),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, EvalError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.err(format!("field `{key}` must be a boolean, got {v}"))),
        }
    }

    fn str_or<'s>(&'s self, key: &str, default: &'s str) -> Result<&'s str, EvalError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(self.err(format!("field `{key}` must be a string, got {v}"))),
        }
    }

    fn activation(&self, key: &str, default: &str) -> Result<Activation, EvalError> {
        match self.str_or(key, default)? {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" => Ok(Activation::GeluNew),
            "gelu_pytorch_tanh" => Ok(Activation::GeluPytorchTanh),
            "relu" => Ok(Activation::Relu),
            other => Err(EvalError::Unsupported {
                what: format!("activation `{other}` (field `{key}`)"),
            }),
        }
    }

    /// Rope theta, linear factor and partial-rotary factor from either config layout.
    fn rope(&self, theta_key: &str, default_theta: f64) -> Result<(f64, f64, f64), EvalError> {
        let params = match self.map.get("rope_parameters") {
            Some(Value::Object(p)) => Some(p),
            None | Some(Value::Null) => None,
            Some(v) => {
                return Err(self.err(format!(
                    "field `rope_parameters` must be an object, got {v}"
                )));
            }
        };
        let scaling = match self.map.get("rope_scaling") {
            Some(Value::Object(p)) => Some(p),
            None | Some(Value::Null) => None,
            Some(v) => {
                return Err(self.err(format!("field `rope_scaling` must be an object, got {v}")));
            }
        };
        let mut theta = self.float_or(theta_key, default_theta)?;
        let mut partial = 1.0;
        let mut kind = "default".to_string();
        let mut factor = 1.0;
        for obj in [params, scaling].into_iter().flatten() {
            if let Some(t) = obj.get("rope_theta").and_then(Value::as_f64) {
                theta = t;
            }
            if let Some(p) = obj.get("partial_rotary_factor").and_then(Value::as_f64) {
                partial = p;
            }
            if let Some(t) = obj
                .get("rope_type")
                .or_else(|| obj.get("type"))
                .and_then(Value::as_str)
            {
                kind = t.to_string();
            }
            if let Some(f) = obj.get("factor").and_then(Value::as_f64) {
                factor = f;
            }
        }
        match kind.as_str() {
            "default" => Ok((theta, 1.0, partial)),
            "linear" if factor > 0.0 => Ok((theta, factor, partial)),
            "linear" => Err(self.err(format!(
                "linear rope scaling needs a positive factor, got {factor}"
            ))),
            other => Err(EvalError::Unsupported {
                what: format!(
                    "rope scaling type `{other}` (only \"default\" and \"linear\" are implemented)"
                ),
            }),
        }
    }
}

/// Reads and parses `config.json` in a model directory.
pub fn read_config(dir: &Path) -> Result<ParsedConfig, EvalError> {
    let path = dir.join("config.json");
    let text = reprobox::input_file::read_to_string(&path, crate::MODEL_JSON_CAP)?;
    parse_config(&path, &text)
}

/// Parses the text of a `config.json` (`path` only names it in errors).
pub fn parse_config(path: &Path, text: &str) -> Result<ParsedConfig, EvalError> {
    let value: Value = serde_json::from_str(text).map_err(|e| EvalError::Config {
        path: path.to_path_buf(),
        message: format!("not valid JSON: {e}"),
    })?;
    let Value::Object(map) = value else {
        return Err(EvalError::Config {
            path: path.to_path_buf(),
            message: "not a JSON object".into(),
        });
    };
    let f = Fields { path, map: &map };
    let model_type = f.str_or("model_type", "")?.to_string();
    let arch = match map
        .get("architectures")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let family_of = |name: &str| match name {
        "LlamaForCausalLM" | "MistralForCausalLM" | "Qwen2ForCausalLM" | "llama" | "mistral"
        | "qwen2" => Some(Family::Llama),
        "GPT2LMHeadModel" | "gpt2" => Some(Family::Gpt2),
        "GPTNeoXForCausalLM" | "gpt_neox" => Some(Family::GptNeox),
        _ => None,
    };
    let (family, architecture) = if arch.is_empty() {
        (family_of(&model_type), model_type.clone())
    } else {
        (family_of(&arch), arch.clone())
    };
    let Some(family) = family else {
        let name = if arch.is_empty() {
            format!("model_type `{model_type}`")
        } else {
            format!("architecture `{arch}`")
        };
        return Err(EvalError::Unsupported { what: name });
    };
    let eos_token_id = match map.get("eos_token_id") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::Array(a)) => a.first().and_then(Value::as_i64),
        _ => None,
    };
    let mut max_positions = None;
    let model = match family {
        Family::Llama => {
            let hidden_size = f.int("hidden_size")?;
            let num_heads = f.int("num_attention_heads")?;
            let num_kv_heads = f.opt_int("num_key_value_heads")?.unwrap_or(num_heads);
            let head_dim = f.opt_int("head_dim")?.unwrap_or(hidden_size / num_heads);
            if num_heads % num_kv_heads != 0 {
                return Err(f.err(format!(
                    "num_attention_heads ({num_heads}) is not a multiple of num_key_value_heads ({num_kv_heads})"
                )));
            }
            let act = f.str_or("hidden_act", "silu")?;
            if act != "silu" {
                return Err(EvalError::Unsupported {
                    what: format!("activation `{act}` in a Llama-family model"),
                });
            }
            let (rope_theta, rope_linear_factor, partial) = f.rope("rope_theta", 10000.0)?;
            if partial != 1.0 {
                return Err(EvalError::Unsupported {
                    what: format!("partial_rotary_factor {partial} in {architecture}"),
                });
            }
            let is_qwen2 = architecture == "Qwen2ForCausalLM" || architecture == "qwen2";
            let is_mistral = architecture == "MistralForCausalLM" || architecture == "mistral";
            if is_qwen2 && f.bool_or("use_sliding_window", false)? {
                return Err(EvalError::Unsupported {
                    what: "Qwen2 use_sliding_window = true".into(),
                });
            }
            let attention_bias = f.bool_or("attention_bias", false)?;
            ModelConfig::Llama(LlamaConfig {
                vocab_size: f.int("vocab_size")?,
                hidden_size,
                intermediate_size: f.int("intermediate_size")?,
                num_layers: f.int("num_hidden_layers")?,
                num_heads,
                num_kv_heads,
                head_dim,
                rms_norm_eps: f.float_or("rms_norm_eps", 1e-6)?,
                rope_theta,
                rope_linear_factor,
                qkv_bias: is_qwen2 || attention_bias,
                o_bias: !is_qwen2 && attention_bias,
                mlp_bias: f.bool_or("mlp_bias", false)?,
                tie_word_embeddings: f.bool_or("tie_word_embeddings", false)?,
                sliding_window: if is_mistral {
                    f.opt_int("sliding_window")?
                } else {
                    None
                },
            })
        }
        Family::Gpt2 => {
            if f.bool_or("add_cross_attention", false)? {
                return Err(EvalError::Unsupported {
                    what: "GPT-2 with add_cross_attention".into(),
                });
            }
            let n_embd = f.int("n_embd")?;
            let n_positions = f.int("n_positions")?;
            max_positions = Some(n_positions);
            ModelConfig::Gpt2(Gpt2Config {
                vocab_size: f.int("vocab_size")?,
                n_embd,
                n_layer: f.int("n_layer")?,
                n_head: f.int("n_head")?,
                n_positions,
                n_inner: f.opt_int("n_inner")?.unwrap_or(4 * n_embd),
                layer_norm_epsilon: f.float_or("layer_norm_epsilon", 1e-5)?,
                activation: f.activation("activation_function", "gelu_new")?,
                scale_attn_weights: f.bool_or("scale_attn_weights", true)?,
                scale_attn_by_inverse_layer_idx: f
                    .bool_or("scale_attn_by_inverse_layer_idx", false)?,
                tie_word_embeddings: f.bool_or("tie_word_embeddings", true)?,
            })
        }
        Family::GptNeox => {
            let hidden_size = f.int("hidden_size")?;
            let num_heads = f.int("num_attention_heads")?;
            let head_dim = hidden_size / num_heads;
            let base = f.float_or("rotary_emb_base", 10000.0)?;
            let (rope_theta, factor, mut partial) = f.rope("rope_theta", base)?;
            if factor != 1.0 {
                return Err(EvalError::Unsupported {
                    what: "rope scaling in a GPT-NeoX model".into(),
                });
            }
            if let Some(p) = map.get("rotary_pct").and_then(Value::as_f64)
                && map.get("rope_parameters").is_none()
            {
                partial = p;
            }
            // transformers: `int(head_dim * partial_rotary_factor)`.
            let rotary_ndims = (head_dim as f64 * partial) as i64;
            if rotary_ndims % 2 != 0 || rotary_ndims > head_dim {
                return Err(f.err(format!(
                    "rotary dimensions {rotary_ndims} must be even and at most {head_dim}"
                )));
            }
            ModelConfig::GptNeox(NeoxConfig {
                vocab_size: f.int("vocab_size")?,
                hidden_size,
                intermediate_size: f.int("intermediate_size")?,
                num_layers: f.int("num_hidden_layers")?,
                num_heads,
                head_dim,
                rotary_ndims,
                rope_theta,
                layer_norm_eps: f.float_or("layer_norm_eps", 1e-5)?,
                use_parallel_residual: f.bool_or("use_parallel_residual", true)?,
                attention_bias: f.bool_or("attention_bias", true)?,
                activation: f.activation("hidden_act", "gelu")?,
                tie_word_embeddings: f.bool_or("tie_word_embeddings", false)?,
            })
        }
    };
    Ok(ParsedConfig {
        model,
        architecture,
        eos_token_id,
        max_positions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ParsedConfig, EvalError> {
        parse_config(Path::new("config.json"), text)
    }

    #[test]
    fn llama_v5_linear_rope_and_gqa() {
        let c = parse(
            r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":307,"hidden_size":48,
            "intermediate_size":72,"num_hidden_layers":2,"num_attention_heads":6,"num_key_value_heads":2,
            "rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":5000.0},"eos_token_id":1}"#,
        )
        .unwrap();
        let ModelConfig::Llama(l) = c.model else {
            panic!("not llama")
        };
        assert_eq!(
            (
                l.head_dim,
                l.num_kv_heads,
                l.rope_theta,
                l.rope_linear_factor
            ),
            (8, 2, 5000.0, 2.0)
        );
        assert!(!l.qkv_bias);
        assert_eq!(c.eos_token_id, Some(1));
    }

    #[test]
    fn qwen2_has_qkv_bias_and_v4_rope_theta() {
        let c = parse(
            r#"{"architectures":["Qwen2ForCausalLM"],"vocab_size":10,"hidden_size":8,"intermediate_size":8,
            "num_hidden_layers":1,"num_attention_heads":2,"rope_theta":1000000.0,"tie_word_embeddings":true}"#,
        )
        .unwrap();
        let ModelConfig::Llama(l) = c.model else {
            panic!("not llama")
        };
        assert!(l.qkv_bias && !l.o_bias && l.tie_word_embeddings);
        assert_eq!(l.rope_theta, 1e6);
    }

    #[test]
    fn unsupported_architecture_and_rope_scaling_are_named() {
        let e =
            parse(r#"{"architectures":["FalconForCausalLM"],"model_type":"falcon"}"#).unwrap_err();
        assert!(e.to_string().contains("FalconForCausalLM"), "{e}");
        assert!(e.to_string().contains("harness"), "{e}");
        let e = parse(
            r#"{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,
            "num_attention_heads":2,"rope_scaling":{"rope_type":"llama3","factor":8.0}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("llama3"), "{e}");
    }

    #[test]
    fn neox_rotary_pct_both_layouts() {
        let v4 = parse(
            r#"{"architectures":["GPTNeoXForCausalLM"],"vocab_size":10,"hidden_size":64,"intermediate_size":8,
            "num_hidden_layers":1,"num_attention_heads":4,"rotary_pct":0.25,"rotary_emb_base":20000}"#,
        )
        .unwrap();
        let ModelConfig::GptNeox(n) = v4.model else {
            panic!("not neox")
        };
        assert_eq!((n.rotary_ndims, n.rope_theta), (4, 20000.0));
        let v5 = parse(
            r#"{"architectures":["GPTNeoXForCausalLM"],"vocab_size":10,"hidden_size":64,"intermediate_size":8,
            "num_hidden_layers":1,"num_attention_heads":4,
            "rope_parameters":{"partial_rotary_factor":0.5,"rope_theta":10000.0,"rope_type":"default"}}"#,
        )
        .unwrap();
        let ModelConfig::GptNeox(n) = v5.model else {
            panic!("not neox")
        };
        assert_eq!(n.rotary_ndims, 8);
    }

    #[test]
    fn bad_fields_are_errors_not_panics() {
        assert!(parse("[1]").is_err());
        assert!(parse(r#"{"model_type":"gpt2","n_embd":"x"}"#).is_err());
        assert!(parse(r#"{"model_type":"llama","hidden_size":8,"num_attention_heads":3,"num_key_value_heads":2}"#).is_err());
    }
}
