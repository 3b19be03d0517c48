//! `starling`: run Starling simulations (and, as the adapters land, real nodes).

use clap::{Parser, Subcommand};

mod progress;
mod sim_cmd;

/// Starling: a sans-IO peer-to-peer protocol toolkit.
#[derive(Parser)]
#[command(name = "starling", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a deterministic simulation of the protocols.
    Sim {
        #[command(subcommand)]
        scenario: sim_cmd::Scenario,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim { scenario } => sim_cmd::run(scenario),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
