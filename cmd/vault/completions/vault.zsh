#compdef vault
# zsh completion for vault. Install:  vault completion zsh > "${fpath[1]}/_vault"
# (then restart zsh), or in ~/.zshrc after compinit:  source <(vault completion zsh)
# Candidates come from `vault __complete` (see `vault completion bash`);
# labels from the index only, never from the keychain.
_vault() {
    local -a out cands
    local directive n
    out=("${(@f)$(command vault __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    directive=${out[-1]}
    case $directive in
    :files) compset -P '-*='; _files ;;
    :dirs) compset -P '-*='; _files -/ ;;
    ":exec "*)
        n=$((${directive#:exec } + 1))
        shift $n words
        ((CURRENT -= n))
        _normal
        ;;
    *)
        cands=("${(@)out[1,-2]}")
        cands=("${(@)cands//$'\t'/:}")
        _describe -t values vault cands
        ;;
    esac
}
if [[ $funcstack[1] == _vault ]]; then _vault "$@"; else compdef _vault vault; fi
