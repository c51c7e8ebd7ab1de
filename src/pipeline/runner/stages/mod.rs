//! One file per stage of a run, each an `impl Driver` block over the stage's own methods, in
//! the order the run takes them: check, plan, inputs, build, train, collect, evaluate (native,
//! harness, submitted), report.

mod build;
mod check;
mod collect;
mod evaluate;
mod harness;
mod inputs;
mod native;
mod plan;
mod report;
mod submitted;
mod train;
