//! What a command can fail with, each with the next step to take.

use npmu::{CardRole, CardsError};
use npmu_hdl::flow::FlowError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    #[error(transparent)]
    Volume(#[from] npmu::Error),
    #[error(transparent)]
    Cards(#[from] CardsError),
    #[error(transparent)]
    Flow(#[from] FlowError),
    #[error(transparent)]
    Config(#[from] npmu_abi::ConfigError),
    #[error("{what}: {why}")]
    Refused { what: String, why: String },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} holds more than the {room} bytes from offset {offset:#x} to the region's end")]
    TooLong {
        what: String,
        room: u64,
        offset: u64,
    },
    #[error("the demo found something wrong: {0}")]
    DemoCheck(String),
    #[error("the restarted demo failed: {0}")]
    Restart(String),
    #[error("measuring: {0}")]
    Bench(String),
}

impl CliError {
    pub fn refused(what: impl Into<String>, why: impl Into<String>) -> Self {
        CliError::Refused {
            what: what.into(),
            why: why.into(),
        }
    }

    /// 2 for what the caller asked wrongly (including an open the cards' state refuses
    /// until the caller says how to go on: --degraded, `npmu volume choose`), 1 for what
    /// went wrong doing it.
    pub fn exit_code(&self) -> u8 {
        use npmu::Error::*;
        match self {
            CliError::Config(_) | CliError::Refused { .. } | CliError::TooLong { .. } => 2,
            CliError::Flow(FlowError::UnknownBoard(_)) => 2,
            CliError::Volume(
                BadName { .. }
                | BadSize { .. }
                | BaseWraps { .. }
                | BadVolumeName { .. }
                | RegionExists(_)
                | NoSuchRegion(_)
                | OutsideRegion { .. }
                | AlreadyFormatted { .. }
                | NotFormatted
                | MemberMissing { .. }
                | Forked { .. }
                | NotForked,
            ) => 2,
            _ => 1,
        }
    }

    /// What to do about it, when there is something to say beyond the message.
    pub fn hint(&self) -> Option<String> {
        use npmu::Error::*;
        let hint = match self {
            CliError::Volume(error) => match error {
                NotFormatted => "`npmu volume format NAME` writes a new volume onto the cards",
                AlreadyFormatted { .. } => {
                    "`npmu volume info` shows it; add --force to format over it (its regions are lost)"
                }
                RegionExists(_) => "pick another name, or `npmu volume delete NAME` first",
                NoSuchRegion(_) => "`npmu volume list` shows the regions",
                BadSize { .. } | NoSpace { .. } => "`npmu volume info` shows the free pages",
                OutsideRegion { .. } => "`npmu volume list` shows each region's size",
                CardStale { .. } | Degraded { .. } => {
                    "`npmu volume resync` rebuilds the stale card from the other"
                }
                CardUnavailable { role, .. } => return Some(unavailable_hint(*role)),
                MemberMissing {
                    missing, present, ..
                } => {
                    return Some(format!(
                        "bring the {missing} card back if it may hold anything (check --device \
                         and --data-dir); or add --degraded (`npmu volume --degraded info`) to \
                         go on with the {present} card alone, then `npmu volume resync` \
                         rebuilds the {missing} card once it answers"
                    ))
                }
                OnlyStaleCard { missing, .. } => {
                    return Some(format!(
                        "bring the {missing} card back (check --device and --data-dir): it \
                         holds the only current copy"
                    ))
                }
                Forked { .. } => {
                    "`npmu volume choose --keep primary|mirror` keeps one card's copy (the \
                     other's writes since the fork are lost); `npmu volume resync` then copies \
                     it to the other card"
                }
                NotForked => {
                    "the volume opens as it is: `npmu volume info` says how each card stands"
                }
                BothCardsFailed { .. } | Cards(_) => {
                    "check --device and --data-dir; `npmu volume info` says how each card stands"
                }
                Metadata { .. } | DifferentVolumes { .. } | WrongRole { .. } => {
                    "the cards do not hold one intact volume: `npmu volume format --force` \
                     starts afresh (their contents are lost)"
                }
                _ => return None,
            },
            CliError::TooLong { .. } => "`npmu volume list` shows each region's size",
            CliError::Cards(CardsError::Vfio { .. }) => {
                "bind both cards to vfio-pci and enable the IOMMU (README: Running on VFIO cards)"
            }
            CliError::Cards(_) => "check that --data-dir names a writable directory",
            CliError::Flow(FlowError::MissingTool { .. } | FlowError::ToolFailed { .. }) => {
                "the tool's log says more; `./run setup` installs the simulation tools"
            }
            CliError::Config(_) => "configurations: sim, ice40 (boards: npmu synth --board)",
            _ => return None,
        };
        Some(hint.to_owned())
    }
}

fn unavailable_hint(role: CardRole) -> String {
    format!(
        "the {role} card is out of use: `npmu volume info` says why; once it answers again, \
         `npmu volume resync` rebuilds it"
    )
}
