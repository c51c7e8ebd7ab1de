//! Runs the methods over a dataset, one example at a time as the subnet evaluates (or, for the
//! loss methods with `batch_size`, several examples of exactly the same length, which needs no
//! padding, so no number changes), under `no_grad`. Losses are computed on logits in the model
//! dtype, as transformers ≥ 4.48 hands bf16 logits to the subnet's `CrossEntropyLoss`
//! (docs/references.md S§2.2).

use std::path::Path;
use std::time::{Duration, Instant};

use tch::{Device, Kind, Reduction, Tensor};

use super::chat::ChatTemplate;
use super::config::read_config;
use super::gate;
use super::ifeval;
use super::model::{KvCache, Model};
use super::multiple_choice::{
    MAX_NEW_TOKENS, REPETITION_PENALTY, SEQUENCE_LENGTH, parse_answer_letter,
};
use super::tokenize::{ModelTokenizer, encode_pair};
use super::weights::Weights;
use super::{
    Dataset, Dtype, EvalDevice, EvalError, EvalOptions, EvalReport, ExampleResult, ExampleValue,
    GateResult, GenerateOptions, Generation, IfEvalPair, Method, StopReason, TextLayout,
};

struct Scorer {
    model: Model,
    max_positions: Option<i64>,
    device: Device,
}

impl Scorer {
    fn check(&self, id: &str, ids: &[i64]) -> Result<(), EvalError> {
        let v = self.model.vocab_size();
        if let Some(&bad) = ids.iter().find(|&&t| t < 0 || t >= v) {
            return Err(EvalError::OutOfRange {
                id: id.to_string(),
                message: format!(
                    "token id {bad} is outside the model's vocabulary of {v} (tokenizer and model disagree)"
                ),
            });
        }
        if let Some(max) = self.max_positions
            && ids.len() as i64 > max
        {
            return Err(EvalError::OutOfRange {
                id: id.to_string(),
                message: format!("{} tokens exceed the model's {max} positions", ids.len()),
            });
        }
        Ok(())
    }

    /// Mean cross-entropy of the last `scored` next-token predictions of `ids`.
    fn loss(&self, id: &str, ids: &[i64], scored: usize) -> Result<f64, EvalError> {
        self.scorable(id, ids, scored)?;
        self.mean_ce(&self.model.logits(ids)?, ids, scored)
    }

    /// Checks `ids` fit the model and leave `scored` next-token positions to score.
    fn scorable(&self, id: &str, ids: &[i64], scored: usize) -> Result<(), EvalError> {
        self.check(id, ids)?;
        let n = ids.len();
        if n < 2 || scored == 0 || scored > n - 1 {
            return Err(EvalError::Degenerate {
                id: id.to_string(),
                message: format!("{n} tokens leave no next-token position to score"),
            });
        }
        Ok(())
    }

    /// The mean cross-entropy of the `[T, V]` logits of `ids` over its last `scored` next-token
    /// positions.
    fn mean_ce(&self, logits: &Tensor, ids: &[i64], scored: usize) -> Result<f64, EvalError> {
        let n = ids.len();
        let pred = logits.f_narrow(0, (n - 1 - scored) as i64, scored as i64)?;
        let labels = Tensor::f_from_slice(&ids[n - scored..])?.f_to(self.device)?;
        let loss =
            pred.f_cross_entropy_loss::<Tensor>(&labels, None, Reduction::Mean, -100, 0.0)?;
        Ok(loss.f_double_value(&[])?)
    }

    /// [`Scorer::loss`] of several `(id, ids, scored)` items, read `batch` at a time among items
    /// of the same length (and one at a time otherwise), in item order. Batching changes no
    /// number: rows of equal length need no padding and no mask.
    fn losses(
        &self,
        items: &[(&str, &[i64], usize)],
        batch: usize,
        tick: &dyn Fn(usize),
    ) -> Result<Vec<f64>, EvalError> {
        if batch <= 1 {
            return items
                .iter()
                .enumerate()
                .map(|(i, (id, ids, scored))| {
                    let v = self.loss(id, ids, *scored);
                    tick(i + 1);
                    v
                })
                .collect();
        }
        let mut done = 0;
        let mut out = vec![0.0; items.len()];
        // Items grouped by length, each group in item order.
        let mut by_len: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (i, (_, ids, _)) in items.iter().enumerate() {
            by_len.entry(ids.len()).or_default().push(i);
        }
        for group in by_len.values() {
            for chunk in group.chunks(batch) {
                if chunk.len() == 1 {
                    let (id, ids, scored) = items[chunk[0]];
                    out[chunk[0]] = self.loss(id, ids, scored)?;
                    done += 1;
                    tick(done);
                    continue;
                }
                let mut rows = Vec::with_capacity(chunk.len());
                for &i in chunk {
                    let (id, ids, scored) = items[i];
                    self.scorable(id, ids, scored)?;
                    rows.push(ids);
                }
                let logits = self.model.logits_batch(&rows)?;
                for (b, &i) in chunk.iter().enumerate() {
                    let (_, ids, scored) = items[i];
                    out[i] = self.mean_ce(&logits.f_select(0, b as i64)?, ids, scored)?;
                }
                done += chunk.len();
                tick(done);
            }
        }
        Ok(out)
    }

    /// lm-eval's log-likelihood of `cont` after `ctx`: the model reads `(ctx + cont)[:-1]` and the
    /// log-softmax (model dtype) of the continuation tokens is summed.
    fn loglikelihood(&self, id: &str, ctx: &[i64], cont: &[i64]) -> Result<f64, EvalError> {
        if cont.is_empty() {
            return Err(EvalError::Degenerate {
                id: id.to_string(),
                message: "a choice gives no token".into(),
            });
        }
        let mut all = ctx.to_vec();
        all.extend_from_slice(cont);
        self.check(id, &all)?;
        all.pop();
        let logp = self.model.logits(&all)?.f_log_softmax(-1, None::<Kind>)?;
        let m = cont.len() as i64;
        let rows = logp.f_narrow(0, all.len() as i64 - m, m)?;
        let idx = Tensor::f_from_slice(cont)?
            .f_to(self.device)?
            .f_unsqueeze(1)?;
        Ok(rows
            .f_gather(1, &idx, false)?
            .f_sum(None::<Kind>)?
            .f_double_value(&[])?)
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in values {
        sum += v;
        n += 1;
    }
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

/// First index of the maximum, as `np.argmax`.
fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

struct Loaded {
    parsed: super::config::ParsedConfig,
    tok: ModelTokenizer,
    scorer: Scorer,
}

fn load(model_dir: &Path, options: &EvalOptions) -> Result<Loaded, EvalError> {
    let parsed = read_config(model_dir)?;
    let tok = ModelTokenizer::load(model_dir)?;
    let device = match options.device {
        EvalDevice::Auto => Device::cuda_if_available(),
        EvalDevice::Cpu => Device::Cpu,
    };
    let kind = match options.dtype {
        Dtype::Fp32 => Kind::Float,
        Dtype::Bf16 => Kind::BFloat16,
        Dtype::Fp16 => Kind::Half,
    };
    let _no_grad = tch::no_grad_guard();
    let mut weights = Weights::load(model_dir, kind, device)?;
    let model = Model::load(&parsed.model, &mut weights, device)?;
    let scorer = Scorer {
        model,
        max_positions: parsed.max_positions,
        device,
    };
    Ok(Loaded {
        parsed,
        tok,
        scorer,
    })
}

/// How [`Scorer::greedy`] decodes.
#[derive(Clone, Copy)]
struct Decode<'a> {
    max_new_tokens: usize,
    repetition_penalty: f64,
    eos: Option<i64>,
    max_time: Option<Duration>,
    /// Ids that are never chosen.
    suppress: &'a [i64],
}

impl Scorer {
    /// Greedy decoding with a KV cache, as transformers' `generate(do_sample=False)`: the logits
    /// of the last position are cast to fp32, the repetition penalty
    /// (`RepetitionPenaltyLogitsProcessor`: a seen token's logit is multiplied by the penalty when
    /// negative, divided when positive) is applied over prompt and generated tokens, and the
    /// first maximum is taken. Stops after `max_new_tokens`, after `eos`, or, as transformers'
    /// `MaxTimeCriteria`, after the first token generated once more than `max_time` has passed
    /// since the call began (the prompt's forward pass included). The `suppress` ids can never be
    /// chosen (`min_new_tokens` covering every step).
    fn greedy(
        &self,
        id: &str,
        prompt_ids: &[i64],
        decode: &Decode<'_>,
    ) -> Result<(Vec<i64>, StopReason), EvalError> {
        let Decode {
            max_new_tokens,
            repetition_penalty,
            eos,
            max_time,
            suppress,
        } = *decode;
        let start = Instant::now();
        if prompt_ids.is_empty() {
            return Err(EvalError::Degenerate {
                id: id.to_string(),
                message: "the prompt gives no token".into(),
            });
        }
        let mut all = prompt_ids.to_vec();
        let mut new_ids = Vec::with_capacity(max_new_tokens);
        let mut cache = KvCache::default();
        let mut input = prompt_ids.to_vec();
        while new_ids.len() < max_new_tokens {
            self.check(id, &all)?;
            let logits = self.model.step(&input, &mut cache)?;
            let n = logits.size()[0];
            let mut row = logits
                .f_select(0, n - 1)?
                .f_to_dtype(Kind::Float, false, true)?;
            if repetition_penalty != 1.0 {
                let idx = Tensor::f_from_slice(&all)?.f_to(self.device)?;
                let seen = row.f_gather(0, &idx, false)?;
                let penalized = seen
                    .f_mul_scalar(repetition_penalty)?
                    .f_where_self(&seen.f_lt(0.0)?, &seen.f_div_scalar(repetition_penalty)?)?;
                row = row.f_scatter(0, &idx, &penalized)?;
            }
            if !suppress.is_empty() {
                // transformers' MinNewTokensLengthLogitsProcessor: these ids get −inf.
                let idx = Tensor::f_from_slice(suppress)?.f_to(self.device)?;
                row = row.f_index_fill(0, &idx, f64::NEG_INFINITY)?;
            }
            let next = row.f_argmax(0, false)?.f_int64_value(&[])?;
            new_ids.push(next);
            all.push(next);
            if Some(next) == eos {
                return Ok((new_ids, StopReason::Eos));
            }
            if max_time.is_some_and(|t| start.elapsed() > t) {
                return Ok((new_ids, StopReason::Time));
            }
            input = vec![next];
        }
        Ok((new_ids, StopReason::Length))
    }
}

/// The subnet's chat prompt for a challenge: the user turn rendered with the generation prompt,
/// tokenized without special tokens (`apply_chat_template(tokenize=True)`); with `truncate`,
/// truncated from the left to the competition's sequence length (`truncation=True`,
/// `truncation_side="left"`). IF_EVAL passes `max_length` without `truncation`, which truncates
/// nothing.
fn chat_prompt_ids(
    template: &ChatTemplate,
    tok: &ModelTokenizer,
    id: &str,
    challenge: &str,
    truncate: bool,
) -> Result<Vec<i64>, EvalError> {
    let prompt = template.render_user_turn(challenge)?;
    let ids = tok.encode(id, &prompt, false)?;
    let skip = if truncate {
        ids.len().saturating_sub(SEQUENCE_LENGTH)
    } else {
        0
    };
    Ok(ids[skip..].to_vec())
}

/// The EOS that ends a chat generation: the tokenizer's `eos_token` (the subnet passes
/// `eos_token_id=tokenizer.eos_token_id`), else config.json's.
fn chat_eos(
    template: &ChatTemplate,
    tok: &ModelTokenizer,
    parsed: &super::config::ParsedConfig,
) -> Option<i64> {
    template
        .special_token("eos_token")
        .and_then(|t| tok.token_id(t))
        .or(parsed.eos_token_id)
}

/// Greedy decoding (see [`Scorer::greedy`]) of `prompt`, or with `options.chat` of the prompt as
/// a user turn of the model's chat template.
pub fn generate_greedy(
    model_dir: &Path,
    prompt: &str,
    options: &GenerateOptions,
) -> Result<Generation, EvalError> {
    let Loaded {
        parsed,
        tok,
        scorer,
    } = load(model_dir, &options.eval)?;
    let _no_grad = tch::no_grad_guard();
    let (prompt_ids, eos) = if options.chat {
        let template = ChatTemplate::load(model_dir)?;
        (
            chat_prompt_ids(&template, &tok, "prompt", prompt, true)?,
            chat_eos(&template, &tok, &parsed),
        )
    } else {
        (tok.encode("prompt", prompt, true)?, parsed.eos_token_id)
    };
    let eos = if options.stop_at_eos { eos } else { None };
    let (new_ids, stopped) = scorer.greedy(
        "prompt",
        &prompt_ids,
        &Decode {
            max_new_tokens: options.max_new_tokens,
            repetition_penalty: options.repetition_penalty,
            eos,
            max_time: options.eval.max_time,
            suppress: &[],
        },
    )?;
    Ok(Generation {
        text: tok.decode(&new_ids)?,
        prompt_ids,
        new_ids,
        stopped,
    })
}

pub fn evaluate_dataset(
    model_dir: &Path,
    dataset: &Dataset,
    options: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    let started = Instant::now();
    let Loaded {
        parsed,
        tok,
        scorer,
    } = load(model_dir, options)?;
    let _no_grad = tch::no_grad_guard();
    let device = scorer.device;
    let load_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let total = dataset.len();
    let tick = |done: usize| {
        if let Some(p) = &options.progress {
            (p.0)(done, total);
        }
    };

    let mut examples = Vec::with_capacity(dataset.len());
    let mut duplicates = None;
    let mut if_eval_score = None;
    let mut gate = None;
    let mut text_layout = None;
    let (method, acc, acc_norm) = match dataset {
        Dataset::Text(rows) => {
            let encoder = TextEncoder::new(model_dir, &tok, &parsed, options.text_layout)?;
            let mut encoded = Vec::with_capacity(rows.len());
            for r in rows {
                encoded.push(encoder.encode(&r.id, &r.text)?);
            }
            if options.gate {
                gate = Some(reasonable_output_gate(
                    &scorer, model_dir, &parsed, rows, &encoded,
                )?);
            }
            // S§2.3 (b): CE over all L-1 next-token positions of the tokenized sample, pads
            // included.
            let items: Vec<(&str, &[i64], usize)> = rows
                .iter()
                .zip(&encoded)
                .map(|(r, ids)| (r.id.as_str(), ids.as_slice(), ids.len().saturating_sub(1)))
                .collect();
            let values = scorer.losses(&items, options.batch_size, &tick)?;
            for ((id, _, scored), value) in items.into_iter().zip(values) {
                examples.push(result(id, ExampleValue::Loss(value), scored));
            }
            text_layout = Some(options.text_layout);
            (Method::TextLoss, None, None)
        }
        Dataset::Reference(rows) => {
            // S§2.2: context and reference tokenized separately, concatenated, loss over the
            // last len(reference) next-token positions.
            let mut encoded = Vec::with_capacity(rows.len());
            for r in rows {
                let mut ids = tok.encode(&r.id, &r.context, true)?;
                let reference = tok.encode(&r.id, &r.reference, true)?;
                ids.extend_from_slice(&reference);
                encoded.push((ids, reference.len()));
            }
            let items: Vec<(&str, &[i64], usize)> = rows
                .iter()
                .zip(&encoded)
                .map(|(r, (ids, n))| (r.id.as_str(), ids.as_slice(), *n))
                .collect();
            let values = scorer.losses(&items, options.batch_size, &tick)?;
            for ((id, _, scored), value) in items.into_iter().zip(values) {
                examples.push(result(id, ExampleValue::Loss(value), scored));
            }
            (Method::ReferenceLoss, None, None)
        }
        Dataset::Choice(rows) => {
            // lm-eval 0.4.13's `prefix_token_id`: the tokenizer's BOS, else its EOS
            // (tokenizer_config.json), else config.json's EOS.
            let specials = super::chat::special_tokens(model_dir)?;
            let named = |name: &str| {
                specials
                    .iter()
                    .find(|(k, _)| k == name)
                    .and_then(|(_, t)| Some((tok.token_id(t)?, t.as_str())))
            };
            let prefix = named("bos_token").or_else(|| named("eos_token"));
            let prefix_id = prefix.map(|p| p.0).or(parsed.eos_token_id);
            let prefix_text = prefix.map(|p| p.1);
            let (mut hits, mut hits_norm) = (0usize, 0usize);
            for r in rows {
                let mut lls = Vec::with_capacity(r.choices.len());
                let mut tokens = 0;
                for choice in &r.choices {
                    let (ctx, cont) = if r.context.is_empty() {
                        // lm-eval: an empty context becomes the prefix token, unless the
                        // continuation (without special tokens) already starts with it.
                        let prefix = prefix_id.ok_or_else(|| EvalError::Degenerate {
                            id: r.id.clone(),
                            message: "empty context and neither tokenizer_config.json nor \
                                      config.json names a BOS or EOS token"
                                .into(),
                        })?;
                        let cont = tok.encode(&r.id, choice, false)?;
                        if cont.first() == Some(&prefix) {
                            (cont[..1].to_vec(), cont[1..].to_vec())
                        } else {
                            (vec![prefix], cont)
                        }
                    } else {
                        encode_pair(&tok, &r.id, &r.context, choice, prefix_text)?
                    };
                    tokens += cont.len();
                    lls.push(scorer.loglikelihood(&r.id, &ctx, &cont)?);
                }
                // lm-eval process_results: acc_norm divides by len(choice), in characters.
                let normed: Vec<f64> = lls
                    .iter()
                    .zip(&r.choices)
                    .map(|(ll, c)| ll / c.chars().count().max(1) as f64)
                    .collect();
                let correct = argmax(&lls) == r.answer;
                let correct_norm = argmax(&normed) == r.answer;
                hits += usize::from(correct);
                hits_norm += usize::from(correct_norm);
                let mut res = result(&r.id, ExampleValue::Choices(lls), tokens);
                res.correct = Some(correct);
                res.correct_norm = Some(correct_norm);
                examples.push(res);
                tick(examples.len());
            }
            let n = rows.len().max(1) as f64;
            (
                Method::ChoiceLoglikelihood,
                Some(hits as f64 / n),
                Some(hits_norm as f64 / n),
            )
        }
        Dataset::MultipleChoice(rows) => {
            // S§2.1: greedy, 20 new tokens, repetition penalty 1.1, stop at the tokenizer's
            // EOS; decoded without special tokens; the first standalone letter is the answer.
            let template = ChatTemplate::load(model_dir)?;
            let eos = chat_eos(&template, &tok, &parsed);
            let mut hits = 0usize;
            for r in rows {
                let ids = chat_prompt_ids(&template, &tok, &r.id, &r.challenge, true)?;
                let (new_ids, _) = scorer.greedy(
                    &r.id,
                    &ids,
                    &Decode {
                        max_new_tokens: MAX_NEW_TOKENS,
                        repetition_penalty: REPETITION_PENALTY,
                        eos,
                        max_time: None,
                        suppress: &[],
                    },
                )?;
                let text = tok.decode(&new_ids)?;
                let letter = parse_answer_letter(&text);
                let correct = letter == Some(r.reference.as_str());
                hits += usize::from(correct);
                let mut res = result(
                    &r.id,
                    ExampleValue::Score(f64::from(u8::from(correct))),
                    new_ids.len(),
                );
                res.correct = Some(correct);
                res.generated = Some(text);
                res.letter = Some(letter.unwrap_or("").to_string());
                examples.push(res);
                tick(examples.len());
            }
            let n = rows.len().max(1) as f64;
            (Method::MultipleChoice, Some(hits as f64 / n), None)
        }
        Dataset::WordSorting(rows) => {
            // S§3.2: the context is the chat-templated challenge (no special tokens added
            // to the rendered text), the reference `encode(reference)` with special tokens;
            // REFERENCE_LOSS over the reference tokens.
            let template = ChatTemplate::load(model_dir)?;
            for r in rows {
                let mut ids = chat_prompt_ids(&template, &tok, &r.id, &r.challenge, true)?;
                let reference = tok.encode(&r.id, &r.reference, true)?;
                ids.extend_from_slice(&reference);
                let value = scorer.loss(&r.id, &ids, reference.len())?;
                examples.push(result(&r.id, ExampleValue::Loss(value), reference.len()));
                tick(examples.len());
            }
            (Method::WordSorting, None, None)
        }
        Dataset::IfEval(rows) => {
            // S§2.4: each prompt of the pair as a user turn (not truncated), greedy, 200 new
            // tokens, repetition penalty 1.2, stop at the tokenizer's EOS (and on time only when
            // asked); decoded without special tokens; then the rule checks and the score.
            let template = ChatTemplate::load(model_dir)?;
            let eos = chat_eos(&template, &tok, &parsed);
            let mut samples = Vec::with_capacity(rows.len());
            let mut generated = Vec::with_capacity(rows.len());
            for r in rows {
                let mut responses = [String::new(), String::new()];
                let mut new_tokens = [0; 2];
                let mut stopped = [StopReason::Length; 2];
                for (i, prompt) in r.prompts.iter().enumerate() {
                    let ids = chat_prompt_ids(&template, &tok, &r.id, prompt, false)?;
                    let (new_ids, stop) = scorer.greedy(
                        &r.id,
                        &ids,
                        &Decode {
                            max_new_tokens: ifeval::MAX_NEW_TOKENS,
                            repetition_penalty: ifeval::REPETITION_PENALTY,
                            eos,
                            max_time: options.max_time,
                            suppress: &[],
                        },
                    )?;
                    responses[i] = tok.decode(&new_ids)?;
                    new_tokens[i] = new_ids.len();
                    stopped[i] = stop;
                }
                generated.push((new_tokens, stopped));
                tick(generated.len());
                samples.push(ifeval::Sample {
                    id: r.id.clone(),
                    rules: r.rules.clone(),
                    responses,
                });
            }
            let judged = ifeval::score(&samples);
            for ((sample, s), (new_tokens, stopped)) in
                samples.into_iter().zip(&judged.samples).zip(generated)
            {
                let value = (s.response_scores[0] + s.response_scores[1]) / 2.0;
                let mut res = result(
                    &sample.id,
                    ExampleValue::Score(value),
                    new_tokens[0] + new_tokens[1],
                );
                res.if_eval = Some(IfEvalPair {
                    responses: sample.responses,
                    new_tokens,
                    stopped,
                    rules: sample.rules.len(),
                    correct: s.correct,
                    response_scores: s.response_scores,
                    duplicate: s.duplicate,
                });
                examples.push(res);
            }
            duplicates = Some((judged.duplicates, judged.duplicate_penalty));
            if_eval_score = Some(judged.score);
            (Method::IfEval, None, None)
        }
    };
    let mean_value = match (acc, if_eval_score) {
        (Some(a), _) => a,
        (None, Some(score)) => score,
        (None, None) => mean(examples.iter().filter_map(|e| match e.value {
            ExampleValue::Loss(v) | ExampleValue::Score(v) => Some(v),
            ExampleValue::Choices(_) => None,
        })),
    };
    // A NaN or infinite mean is never a score (issue 17): the one exception is a failed gate,
    // whose score is the subnet's inf whatever the losses are.
    let gate_failed = gate.as_ref().is_some_and(|g: &GateResult| !g.passed);
    if !mean_value.is_finite() && !gate_failed {
        return Err(not_finite(method, mean_value, &examples));
    }
    let device_name = match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".to_string(),
    };
    Ok(EvalReport {
        method,
        architecture: parsed.architecture,
        dtype: options.dtype,
        device: device_name,
        examples,
        mean: mean_value,
        acc,
        acc_norm,
        duplicates: duplicates.map(|d| d.0),
        duplicate_penalty: duplicates.map(|d| d.1),
        timing: super::Timing {
            load_secs,
            score_secs: started.elapsed().as_secs_f64(),
        },
        text_layout,
        gate,
    })
}

/// The error for a mean that is not finite, naming the first example whose value is not.
fn not_finite(method: Method, mean: f64, examples: &[ExampleResult]) -> EvalError {
    let first = examples.iter().find(|e| match &e.value {
        ExampleValue::Loss(v) | ExampleValue::Score(v) => !v.is_finite(),
        ExampleValue::Choices(c) => c.iter().any(|v| !v.is_finite()),
    });
    EvalError::NotFinite {
        method: method.name().to_owned(),
        mean,
        examples: examples.len(),
        first: first.map(|e| e.id.clone()),
    }
}

/// TEXT_LOSS's tokenization in one of the subnet's layouts (docs/references.md S§3.3).
struct TextEncoder<'a> {
    plain: &'a ModelTokenizer,
    /// The truncating copy, for the layouts with a `max_length`.
    truncating: Option<ModelTokenizer>,
    layout: TextLayout,
    /// The EOS (AppendEos) or the pad token (PadToMaxLength), with pads on the left.
    extra: Option<i64>,
    pad_left: bool,
}

impl<'a> TextEncoder<'a> {
    fn new(
        model_dir: &Path,
        tok: &'a ModelTokenizer,
        parsed: &super::config::ParsedConfig,
        layout: TextLayout,
    ) -> Result<Self, EvalError> {
        let (max_length, extra) = match layout {
            TextLayout::Plain => {
                return Ok(Self {
                    plain: tok,
                    truncating: None,
                    layout,
                    extra: None,
                    pad_left: false,
                });
            }
            TextLayout::AppendEos { max_length } => (max_length, "eos_token"),
            TextLayout::PadToMaxLength { max_length } => (max_length, "pad_token"),
        };
        let specials = super::chat::special_tokens(model_dir)?;
        let named = |name: &str| {
            specials
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, t)| tok.token_id(t))
        };
        // `tokenizer.eos_token_id`; the pad token falls back to it (the subnet's
        // `pad_token = eos_token` when a tokenizer has none, PR #219); then config.json's EOS.
        let id = named(extra)
            .or_else(|| named("eos_token"))
            .or(parsed.eos_token_id)
            .ok_or_else(|| EvalError::Degenerate {
                id: "(all)".into(),
                message: format!(
                    "the {} text layout needs an EOS token, and neither tokenizer_config.json nor \
                     config.json names one",
                    if extra == "eos_token" {
                        "append_eos"
                    } else {
                        "pad_to_max_length"
                    }
                ),
            })?;
        Ok(Self {
            plain: tok,
            truncating: Some(tok.truncating(
                max_length,
                super::chat::side_is_left(model_dir, "truncation_side")?,
            )?),
            layout,
            extra: Some(id),
            pad_left: super::chat::side_is_left(model_dir, "padding_side")?,
        })
    }

    fn encode(&self, id: &str, text: &str) -> Result<Vec<i64>, EvalError> {
        let tok = self.truncating.as_ref().unwrap_or(self.plain);
        let mut ids = tok.encode(id, text, true)?;
        match (self.layout, self.extra) {
            (TextLayout::AppendEos { .. }, Some(eos)) => ids.push(eos),
            (TextLayout::PadToMaxLength { max_length }, Some(pad)) if ids.len() < max_length => {
                let pads = std::iter::repeat_n(pad, max_length - ids.len());
                if self.pad_left {
                    ids.splice(0..0, pads);
                } else {
                    ids.extend(pads);
                }
            }
            _ => {}
        }
        Ok(ids)
    }
}

/// S§2.3 (a): 20 new tokens from the whole of sample 0 and of sample 1, EOS suppressed for
/// every step, decoded greedily with the repetition penalty of the model's
/// generation_config.json, then judged.
fn reasonable_output_gate(
    scorer: &Scorer,
    model_dir: &Path,
    parsed: &super::config::ParsedConfig,
    rows: &[super::TextExample],
    encoded: &[Vec<i64>],
) -> Result<GateResult, EvalError> {
    let settings = gate::read_generation_config(model_dir)?;
    if encoded.len() < 2 {
        return Ok(gate::too_few_samples(encoded.len(), &settings));
    }
    let mut eos = settings.eos.clone();
    if eos.is_empty() {
        eos.extend(parsed.eos_token_id);
    }
    let mut out: [Vec<i64>; 2] = Default::default();
    for i in 0..2 {
        let (new_ids, _) = scorer.greedy(
            &rows[i].id,
            &encoded[i],
            &Decode {
                max_new_tokens: gate::GATE_TOKENS,
                repetition_penalty: settings.repetition_penalty,
                eos: None,
                max_time: None,
                suppress: &eos,
            },
        )?;
        out[i] = new_ids;
    }
    Ok(gate::judge(&out[0], &out[1], &settings))
}

fn result(id: &str, value: ExampleValue, tokens: usize) -> ExampleResult {
    ExampleResult {
        id: id.to_string(),
        value,
        tokens,
        correct: None,
        correct_norm: None,
        generated: None,
        letter: None,
        if_eval: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_maximum_like_numpy() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[-5.0]), 0);
        assert_eq!(mean([1.0, 2.0, 6.0].into_iter()), 3.0);
    }
}
