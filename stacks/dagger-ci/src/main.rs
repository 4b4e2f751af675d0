//! The `dagger-ci` stack program: `cargo run -- [--stack NAME] COMMAND`.

fn main() -> std::process::ExitCode {
    spar::cli::run("dagger-ci", dagger_ci::define)
}
