using Amber.Image.Schema;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

public sealed partial class CheckpointReader
{
    internal static Dictionary<string, ImageFileEntry> ValidateManifest(Manifest manifest, string path, ImageLimits limits)
    {
        if (manifest.FormatVersion != ImageFormat.FormatVersion)
        {
            throw ImageErrors.Format(path, $"manifest format version {manifest.FormatVersion} is not supported (this build reads version {ImageFormat.FormatVersion})");
        }
        foreach (string feature in manifest.RequiredFeatures)
        {
            if (!ImageFormat.SupportedFeatures.Contains(feature))
            {
                throw ImageErrors.Format(path, $"requires feature {FileNames.Quote(feature)}, which this build does not support");
            }
        }
        if (manifest.Files.Count > limits.MaxFiles)
        {
            throw ImageErrors.Format(path, $"lists {manifest.Files.Count} files, more than the limit of {limits.MaxFiles} (ImageLimits.MaxFiles)");
        }
        var files = new Dictionary<string, ImageFileEntry>(manifest.Files.Count, StringComparer.Ordinal);
        foreach (ImageFileEntry entry in manifest.Files)
        {
            if (FileNames.FindProblem(entry.Name) is { } problem)
            {
                throw ImageErrors.Format(path, $"lists a file whose name {FileNames.Quote(entry.Name)} {problem}");
            }
            if (entry.Name == ImageFormat.ManifestFileName)
            {
                throw ImageErrors.Format(path, "lists itself");
            }
            if (!files.TryAdd(entry.Name, entry))
            {
                throw ImageErrors.Format(path, $"lists {FileNames.Quote(entry.Name)} twice");
            }
        }
        return files;
    }

    internal static void VerifyFile(string path, ImageFileEntry entry, ImageLimits limits, bool verifyPageFiles, bool verifyMessages = true)
    {
        using SafeFileHandle handle = ImageFiles.OpenRegular(path, out long length);
        if ((ulong)length != entry.Size)
        {
            throw ImageErrors.Format(path, $"is {length} bytes, the manifest says {entry.Size} (truncated or modified)");
        }

        ulong actual;
        Span<byte> head = stackalloc byte[PageFileHeader.Length];
        head = head[..(int)Math.Min(length, head.Length)];
        ImageFiles.ReadExactly(handle, head, 0, path);
        if (PageFileHeader.HasPageTag(head))
        {
            ulong dataLength = PageFileHeader.Validate(head, length, limits, path);
            if (!verifyPageFiles)
            {
                return;
            }
            actual = PageFileHeader.FileChecksum(head, FileHashing.Hash(handle, PageFileHeader.Length, (long)dataLength, path));
        }
        else
        {
            if (length > MessageFileHeader.Length + (long)limits.MaxMetadataBytes)
            {
                throw ImageErrors.Format(path, $"is {length} bytes, more than a metadata file may hold (ImageLimits.MaxMetadataBytes is {limits.MaxMetadataBytes})");
            }
            if (!verifyMessages)
            {
                return; // checked as it is read (MessageFile.Read)
            }
            actual = FileHashing.Hash(handle, 0, length, path);
        }
        if (actual != entry.Xxh3)
        {
            throw ImageErrors.ManifestChecksum(path, actual, entry.Xxh3);
        }
    }
}
