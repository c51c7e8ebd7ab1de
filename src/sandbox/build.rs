//! Building the submission's image: check the FROM images are present locally (nothing is
//! pulled), tar the context, build with no GPU, the policy's network (default `none`), labels
//! `reprobox.run` and `reprobox.stage=build`, no cache, under the build time limit, streaming
//! the builder's output line by line into `logs/build.log`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::SandboxError;
use super::container::{LABEL_RUN, LABEL_STAGE, check_run_id};
use super::context::{base_images, build_context};
use crate::engine::{BuildEvent, BuildRequest, ContainerEngine};

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// The run id (label `reprobox.run`).
    pub run_id: String,
    /// The build context directory on the host.
    pub context_dir: PathBuf,
    /// The Dockerfile on the host (inside the context or not).
    pub dockerfile: PathBuf,
    /// The network for RUN steps (`none` unless the policy allows one for the build stage).
    pub network: String,
    /// The build time limit.
    pub time_limit: Duration,
    /// The largest context accepted, in bytes.
    pub max_context_bytes: u64,
}

/// A built image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BuiltImage {
    /// The image id (`sha256:…`).
    pub image_id: String,
    /// The tag it was given (`reprobox-run/<run-id>:build`).
    pub tag: String,
    /// Regular files in the context.
    pub context_files: usize,
    /// Size of the context tar.
    pub context_bytes: u64,
    /// Build wall time, milliseconds.
    pub duration_ms: u64,
}

/// The tag a run's image gets (Docker wants lowercase repository names).
pub fn build_tag(run_id: &str) -> String {
    format!("reprobox-run/{}:build", run_id.to_ascii_lowercase())
}

fn write_log(file: &mut std::fs::File, path: &Path, text: &str) -> Result<(), SandboxError> {
    file.write_all(text.as_bytes())
        .map_err(|source| SandboxError::Write {
            path: path.to_owned(),
            source,
        })
}

/// Where a build stands, for progress lines: handed to [`build_image_with`]'s callback at each
/// step and about once a second in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildProgress<'a> {
    /// Time since the build was sent.
    pub elapsed: Duration,
    /// The Dockerfile step under way, and the step count (`Step 3/7`), once the builder said it.
    pub step: Option<(u32, u32)>,
    /// That step's instruction as the builder printed it (`RUN pip install …`); untrusted text.
    pub instruction: Option<&'a str>,
    /// Size of the context sent to the engine.
    pub context_bytes: u64,
    /// Bytes of builder output so far.
    pub log_bytes: u64,
}

/// The step a line of builder output starts: the classic builder's `Step 3/7 : RUN …`, or
/// BuildKit's `#8 [3/7] RUN …`.
pub fn parse_step(line: &str) -> Option<(u32, u32, &str)> {
    let line = line.trim_start();
    let (counts, rest) = if let Some(rest) = line.strip_prefix("Step ") {
        let (counts, rest) = rest.split_once(" : ")?;
        (counts, rest)
    } else {
        let rest = line.strip_prefix('#')?;
        let (_, rest) = rest.split_once(" [")?;
        let (counts, rest) = rest.split_once("] ")?;
        // BuildKit names the stage too (`[builder 2/4]`): the counts are the last word.
        (counts.rsplit(' ').next()?, rest)
    };
    let (n, m) = counts.split_once('/')?;
    let (n, m) = (n.parse().ok()?, m.parse().ok()?);
    (n >= 1 && n <= m).then_some((n, m, rest.trim_end()))
}

/// Builds the submission's image, writing the builder's output to `log_path`.
pub async fn build_image<E: ContainerEngine>(
    engine: &E,
    spec: &BuildSpec,
    log_path: &Path,
) -> Result<BuiltImage, SandboxError> {
    build_image_with(engine, spec, log_path, &mut |_| {}).await
}

/// [`build_image`], telling `on_progress` where the build stands.
pub async fn build_image_with<E: ContainerEngine>(
    engine: &E,
    spec: &BuildSpec,
    log_path: &Path,
    on_progress: &mut (dyn FnMut(&BuildProgress<'_>) + Send),
) -> Result<BuiltImage, SandboxError> {
    check_run_id(&spec.run_id)?;
    for base in base_images(&spec.dockerfile)? {
        if !engine.image_exists(&base.reference).await? {
            return Err(SandboxError::MissingBaseImage {
                image: base.reference,
                dockerfile: spec.dockerfile.clone(),
                line: base.line as usize,
            });
        }
    }
    let context_dir = spec.context_dir.clone();
    let dockerfile = spec.dockerfile.clone();
    let max = spec.max_context_bytes;
    // Reading and tarring the tree is blocking file I/O.
    let archive =
        tokio::task::spawn_blocking(move || build_context(&context_dir, &dockerfile, max))
            .await
            .map_err(|e| SandboxError::Write {
                path: spec.context_dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })??;
    if let Some(parent) = log_path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| SandboxError::Write {
            path: parent.to_owned(),
            source,
        })?;
    }
    let mut log = std::fs::File::create(log_path).map_err(|source| SandboxError::Write {
        path: log_path.to_owned(),
        source,
    })?;
    for junk in &archive.skipped {
        write_log(
            &mut log,
            log_path,
            &format!("[reprobox] left out of the context: {}\n", junk.display()),
        )?;
    }
    let tag = build_tag(&spec.run_id);
    let labels = HashMap::from([
        (LABEL_RUN.to_owned(), spec.run_id.clone()),
        (LABEL_STAGE.to_owned(), "build".to_owned()),
    ]);
    let context_bytes = archive.tar.len() as u64;
    let request = BuildRequest {
        context: archive.tar,
        dockerfile: archive.dockerfile,
        tag: tag.clone(),
        labels,
        network: spec.network.clone(),
        nocache: true,
    };
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + spec.time_limit;
    let mut stream = engine.build_image(request);
    let mut image_id = None;
    let mut step: Option<(u32, u32)> = None;
    let mut instruction = String::new();
    let mut log_bytes = 0u64;
    let every = Duration::from_secs(1);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout_at(deadline, stream.next()) => n,
            _ = tick.tick() => {
                on_progress(&BuildProgress {
                    elapsed: started.elapsed(),
                    step,
                    instruction: step.map(|_| instruction.as_str()),
                    context_bytes,
                    log_bytes,
                });
                continue;
            }
        };
        let item = match next {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(_) => {
                // Dropping the stream closes the connection; the daemon then cancels the build
                // and (forcerm) removes its intermediate containers.
                drop(stream);
                write_log(
                    &mut log,
                    log_path,
                    "[reprobox] build stopped: time limit reached\n",
                )?;
                let cause = SandboxError::BuildTimeout {
                    tag: tag.clone(),
                    limit: spec.time_limit,
                };
                let label = format!("{LABEL_RUN}={}", spec.run_id);
                let cleanup = engine
                    .remove_images(&label)
                    .await
                    .map_err(SandboxError::from);
                return Err(cause.with_cleanup(cleanup));
            }
        };
        match item {
            Ok(BuildEvent::Output(text)) => {
                write_log(&mut log, log_path, &text)?;
                log_bytes += text.len() as u64;
                let started_step = text.lines().filter_map(parse_step).next_back();
                if let Some((n, m, instr)) = started_step {
                    step = Some((n, m));
                    instruction.clear();
                    instruction.extend(instr.chars().take(240));
                    on_progress(&BuildProgress {
                        elapsed: started.elapsed(),
                        step,
                        instruction: Some(&instruction),
                        context_bytes,
                        log_bytes,
                    });
                }
            }
            Ok(BuildEvent::ImageId(id)) => image_id = Some(id),
            Err(e) => {
                write_log(
                    &mut log,
                    log_path,
                    &format!("[reprobox] build failed: {e}\n"),
                )?;
                return Err(e.into());
            }
        }
    }
    log.sync_data().map_err(|source| SandboxError::Write {
        path: log_path.to_owned(),
        source,
    })?;
    let image_id = image_id.ok_or_else(|| SandboxError::NoImageId { tag: tag.clone() })?;
    Ok(BuiltImage {
        image_id,
        tag,
        context_files: archive.files,
        context_bytes,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn build_steps_are_read_from_either_builder() {
        assert_eq!(
            super::parse_step("Step 3/7 : RUN pip install -r requirements.txt"),
            Some((3, 7, "RUN pip install -r requirements.txt"))
        );
        assert_eq!(
            super::parse_step("#8 [builder 2/4] COPY . /app"),
            Some((2, 4, "COPY . /app"))
        );
        assert_eq!(
            super::parse_step("#5 [3/7] RUN make "),
            Some((3, 7, "RUN make"))
        );
        for not_a_step in [
            "Step 8/7 : RUN x",
            "Step 0/7 : RUN x",
            "Step x/7 : RUN x",
            " ---> Running in 1234",
            "#5 DONE 0.1s",
            "Successfully built abc",
        ] {
            assert_eq!(super::parse_step(not_a_step), None, "{not_a_step}");
        }
    }
}
