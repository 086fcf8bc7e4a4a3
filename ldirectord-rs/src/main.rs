fn main() {
    eprintln!("ldirectord: not built yet");
    std::process::exit(1);
}
