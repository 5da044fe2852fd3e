use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    nspool::cli::run(nspool::cli::Cli::parse()).await
}
