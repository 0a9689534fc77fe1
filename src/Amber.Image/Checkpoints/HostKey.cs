using System.Security.Cryptography;
using Amber.Image.Schema;
using Google.Protobuf;

namespace Amber.Image;

/// <summary>
/// A key of this host's that signs every manifest amber writes (HMAC-SHA256 over the manifest, which
/// lists every file of the checkpoint with its size and XXH3): a reader then knows a checkpoint was
/// written here and not forged or brought from elsewhere — XXH3 alone anyone can compute again.
/// 32 random bytes in a 0600 file: /var/lib/amber/host.key for root, ~/.local/share/amber/host.key
/// for anyone else, AMBER_HOST_KEY to choose; made on first use.
/// </summary>
public static class HostKey
{
    private const int KeyBytes = 32;
    private static readonly Lazy<byte[]> Key = new(Load);

    /// <summary>Where the key is: AMBER_HOST_KEY if set, else root's or the user's place (see the type).</summary>
    public static string Path =>
        Environment.GetEnvironmentVariable("AMBER_HOST_KEY") is { Length: > 0 } chosen ? chosen
        : Environment.UserName == "root" || Environment.GetEnvironmentVariable("HOME") is not { Length: > 0 }
            ? "/var/lib/amber/host.key"
            : System.IO.Path.Combine(Environment.GetEnvironmentVariable("HOME")!, ".local/share/amber/host.key");

    /// <summary>The manifest's MAC, over its bytes with the MAC left out.</summary>
    public static byte[] Mac(Manifest manifest)
    {
        var unsigned = manifest.Clone();
        unsigned.HostMac = ByteString.Empty;
        return HMACSHA256.HashData(Key.Value, unsigned.ToByteArray());
    }

    /// <summary>Sets the manifest's MAC (<c>host_mac</c>) with this host's key; any later change leaves it unsigned.</summary>
    public static void Sign(Manifest manifest) => manifest.HostMac = ByteString.CopyFrom(Mac(manifest));

    /// <summary>Whether this host wrote the manifest (its MAC is this host key's).</summary>
    public static bool Signed(Manifest manifest) =>
        manifest.HostMac.Length == 32 && CryptographicOperations.FixedTimeEquals(manifest.HostMac.Span, Mac(manifest));

    /// <summary>
    /// The key read and one MAC made now, where time is cheap: the first MAC of a process loads the
    /// crypto library (6–8 ms here), which a checkpoint that keeps its processes frozen until it is
    /// sealed, or a restore started ahead, would otherwise pay in a migration's downtime. A key that
    /// cannot be used is said by the MAC that needs it.
    /// </summary>
    public static void Warm()
    {
        try
        {
            _ = Mac(new Manifest());
        }
        catch (ImageStoreException)
        {
            // said when it is needed
        }
    }

    private static byte[] Load()
    {
        string path = Path;
        try
        {
            if (!File.Exists(path))
                Create(path);
            var mode = File.GetUnixFileMode(path);
            if ((mode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
                throw new ImageStoreException($"the host key {path} may be read or written by others (mode {Convert.ToString((int)mode, 8)}): chmod 600 it");
            var key = File.ReadAllBytes(path);
            if (key.Length != KeyBytes)
                throw new ImageStoreException($"the host key {path} holds {key.Length} bytes, not {KeyBytes}");
            return key;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageStoreException($"cannot use the host key {path}: {e.Message}", e);
        }
    }

    /// <summary>Made once, atomically: two ambers starting at once end up with one key.</summary>
    private static void Create(string path)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string temporary = $"{path}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        using (var file = new FileStream(temporary, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            file.Write(RandomNumberGenerator.GetBytes(KeyBytes));
            file.Flush(flushToDisk: true);
        }
        try
        {
            File.Move(temporary, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temporary); // another amber made it first
        }
    }
}
