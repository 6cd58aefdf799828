//! The `autodiscover-exporter` binary.

fn main() -> std::process::ExitCode {
    autodiscover_exporter::cli::run()
}
