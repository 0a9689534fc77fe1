using System.CommandLine;
using Amber.Image;

namespace Amber.Cli;

/// <summary>The options that name a key file of encrypted checkpoints: --encrypt (to write one), --key (to read one).</summary>
public static class KeyOptions
{
    public static Option<string> Encrypt() =>
        new("--encrypt") { Description = "Encrypt the checkpoint (AES-256-GCM) with the key in KEYFILE: 32 random bytes, mode 0600 (amber key new KEYFILE)", HelpName = "KEYFILE" };

    public static Option<string> Key() =>
        new("--key") { Description = "The key file of an encrypted checkpoint (the one --encrypt named)", HelpName = "KEYFILE" };

    /// <summary>The key in the file <paramref name="path"/> names; null if none is named.</summary>
    public static ImageKey? Load(string? path) => path is null ? null : ImageKey.Load(path);
}
