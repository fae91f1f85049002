//! `gatewayctl`: the gateway's admin and tenant APIs from a terminal. Talks to any gateway URL
//! with the admin token or a tenant key (environment, config file or stdin); prints JSON, or a
//! table; an error is one line on stderr and a non-zero exit. `gatewayctl listen` is the other
//! end: a local receiver of deliveries and stand-in for the channel providers.

#[cfg(not(target_arch = "wasm32"))]
mod api;
#[cfg(not(target_arch = "wasm32"))]
mod cli;
#[cfg(not(target_arch = "wasm32"))]
mod config;
#[cfg(not(target_arch = "wasm32"))]
mod escape;
#[cfg(not(target_arch = "wasm32"))]
mod listen;
#[cfg(not(target_arch = "wasm32"))]
mod output;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    let args = cli::parse();
    if let Err(e) = cli::run(args) {
        // An error may quote the gateway, which may quote a sender.
        eprintln!("gatewayctl: {}", escape::line(&e));
        std::process::exit(1);
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
