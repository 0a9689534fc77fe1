using Amber.Image;
using Amber.Kernel.Files;

namespace Amber.Coordinator.Groups;

/// <summary>
/// The key file a group's checkpoints are encrypted with (amber run --encrypt KEYFILE;
/// GroupConfig.EncryptKey): its checkpoints, restores, merges and verifies all use it.
/// </summary>
public static class GroupKey
{
    /// <summary>Why the key file cannot be a key of a group of user <paramref name="owner"/>, or null.</summary>
    /// <remarks>The coordinator reads it as root: a user's group may only name a key file of the user's own (not root's host key, say).</remarks>
    public static string? Problem(string path, uint owner)
    {
        if (!Path.IsPathFullyQualified(path))
            return $"--encrypt {path} must be a full path";
        if (!FileStat.TryGet(path, out var stat)) // the file a link leads to: that is what is read
            return $"the key file {path} does not exist (amber key new {path} makes one)";
        if (owner != 0 && stat.Uid != owner)
            return $"the key file {path} is not the user's own (it belongs to uid {stat.Uid})";
        try
        {
            ImageKey.Load(path);
            return null;
        }
        catch (ImageStoreException e)
        {
            return e.Message;
        }
    }

    /// <summary>The group's key, or null if its checkpoints are not encrypted.</summary>
    /// <exception cref="ImageStoreException">The key file is gone or no longer a key.</exception>
    public static ImageKey? Of(GroupConfig config) => config.EncryptKey.Length > 0 ? ImageKey.Load(config.EncryptKey) : null;

    /// <summary>The worker's arguments that name the group's key (<paramref name="option"/> KEYFILE), none if it has none.</summary>
    public static string[] Arguments(GroupConfig config, string option) => config.EncryptKey.Length > 0 ? [option, config.EncryptKey] : [];
}
