//! The `pglab` program; everything it does is in the library's `cli` module.

fn main() {
    std::process::exit(pglab::cli_main());
}
