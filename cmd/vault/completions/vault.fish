# fish completion for vault. Install:  vault completion fish > ~/.config/fish/completions/vault.fish
# Candidates come from `vault __complete` (see `vault completion bash`);
# labels from the index only, never from the keychain.
function __vault_complete
    set -l toks (commandline -opc)
    set -l cur (commandline -ct)
    set -l out (command vault __complete $toks[2..-1] "$cur" 2>/dev/null)
    or return
    switch "$out[-1]"
        case :files
            __fish_complete_path "$cur"
        case :dirs
            __fish_complete_directories "$cur"
        case ':exec *'
            set -l n (math (string split ' ' -- $out[-1])[2] + 2)
            complete -C (string join ' ' -- (string escape -- $toks[$n..-1]) "$cur")
        case '*'
            printf '%s\n' $out[1..-2]
    end
end
complete -c vault -f -a '(__vault_complete)'
