using System.Security.Cryptography;
using System.Text;
using Amber.Coordinator.Groups;
using Amber.Kernel;
using Amber.Kernel.Files;

namespace Amber.Transport.Migration;

/// <summary>
/// Whether a group's storage, declared on a file system the nodes share (--shared-storage), is the very
/// same directories on the destination, which may then keep them as they are: the source marks each
/// directory with a new random token, in an extended attribute (no listing of the directory shows it,
/// and a storage checkpoint does not capture it), and the destination reads the token back under the
/// same path. A directory it does not see marked — another disk, a file system without user
/// attributes — and the storage is sent as it is for any group.
/// </summary>
internal static class SharedStorage
{
    private const string Attribute = "user.amber.shared";

    /// <summary>
    /// The group's storage directories marked with a new token, which is returned; null if the group
    /// declares no shared storage, or (then <paramref name="problem"/> says why) one cannot be marked.
    /// </summary>
    public static string? Mark(GroupConfig group, out string? problem)
    {
        problem = null;
        if (!group.SharedStorage || group.Storage.Count == 0)
            return null;
        string token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        foreach (string dir in group.Storage)
        {
            try
            {
                ExtendedAttributes.Set(dir, Attribute, Encoding.ASCII.GetBytes(token));
            }
            catch (KernelCallException e)
            {
                problem = $"{dir} cannot be marked to compare it with the destination's ({e.Message})";
                Unmark(group);
                return null;
            }
        }
        return token;
    }

    /// <summary>The marks taken off again (one that cannot be is left: it changes nothing of the directory's files).</summary>
    public static void Unmark(GroupConfig group)
    {
        foreach (string dir in group.Storage)
        {
            try
            {
                ExtendedAttributes.Remove(dir, Attribute);
            }
            catch (KernelCallException)
            {
                // A directory gone or read-only meanwhile: its mark is a few bytes no program reads.
            }
        }
    }

    /// <summary>On the destination: null if every storage directory of the group carries <paramref name="token"/> here; otherwise why not.</summary>
    public static string? Check(GroupConfig group, string token)
    {
        foreach (string dir in group.Storage)
        {
            byte[]? mark;
            try
            {
                mark = ExtendedAttributes.Get(dir, Attribute);
            }
            catch (KernelCallException e)
            {
                return $"{dir} cannot be compared here ({e.Message})";
            }
            if (mark is null || Encoding.ASCII.GetString(mark) != token)
                return $"{dir} is not the same directory here";
        }
        return null;
    }
}
