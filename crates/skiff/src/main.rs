//! `skiff`: the binary. CLI and wiring only; every behaviour lives in a library crate.

mod bench;
mod cli;
mod kubeconfig;
mod netcheck;
mod up;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        cli::Command::Up(args) => up::run(args),
        cli::Command::Kubeconfig(args) => kubeconfig::run(&args),
        cli::Command::Bench(cli::BenchCommand::Api(args)) => bench::run(args),
        // Its exit code is the verdict (0 allowed, 1 denied, 2 error), not a plain success flag.
        cli::Command::Netcheck(args) => return netcheck::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
