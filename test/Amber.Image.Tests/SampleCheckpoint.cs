using Amber.Image.Schema;
using Google.Protobuf;

namespace Amber.Image.Tests;

/// <summary>A small but complete checkpoint: a process image, a generic metadata file and a page file.</summary>
internal sealed class SampleCheckpoint
{
    public const string ProcessFile = "process-100.img";
    public const string MetadataFile = "sigactions-100.img";
    public const string PageFile = "pages-100.img";

    public static readonly string[] AllFiles = [ImageFormat.ManifestFileName, ProcessFile, MetadataFile, PageFile];

    // Mixed sizes on purpose: gathered single pages, a direct 1 MiB write, gathered again.
    private static readonly int[] RunPages = [1, 3, 16, 257, 1, 1, 1, 2, 512, 1];

    private SampleCheckpoint(string directory, ProcessImage process, SignalAction metadata, List<PageRunData> runs, Manifest manifest)
    {
        Directory = directory;
        Process = process;
        Metadata = metadata;
        Runs = runs;
        Manifest = manifest;
    }

    public string Directory { get; }

    public ProcessImage Process { get; }

    public SignalAction Metadata { get; }

    public List<PageRunData> Runs { get; }

    public Manifest Manifest { get; }

    public string PathOf(string fileName) => Path.Join(Directory, fileName);

    public static SampleCheckpoint Write(string directory, int seed = 1)
    {
        var random = new Random(seed);
        var runs = new List<PageRunData>();
        var process = new ProcessImage
        {
            Pid = 100,
            Ppid = 1,
            Comm = "sample",
            ExePath = "/usr/bin/sample",
            PageFile = PageFile,
            Mm = new MmImage { PageSize = ImageFormat.PageSize, StartBrk = 0x5000_0000 },
        };
        process.Threads.Add(new ThreadImage { Tid = 100, Regs = ByteString.CopyFrom(RandomBytes(random, 216)) });
        var metadata = new SignalAction { Signal = 15, Handler = 0x4010_00, Flags = 0x0400_0000, Mask = 1 << 14 };

        using (CheckpointWriter writer = CheckpointWriter.Create(directory))
        {
            PageFileWriter pages = writer.CreatePageFile(PageFile);
            ulong address = 0x7f00_0000_0000;
            foreach (int count in RunPages)
            {
                byte[] data = RandomBytes(random, count * ImageFormat.PageSize);
                (ulong offset, ulong[] hashes) = pages.Append(data);
                runs.Add(new PageRunData(address, offset, hashes, data));
                process.Mm.Pages.Add(new PageRun { Address = address, Count = (ulong)count, FileOffset = offset, PageXxh3 = { hashes } });
                address += (ulong)data.Length + ImageFormat.PageSize;
            }
            writer.WriteMessage(ProcessFile, ImageFileKind.Process, process);
            writer.WriteMessage(MetadataFile, ImageFileKind.Metadata, metadata);
            var manifest = new Manifest { AmberVersion = "test", RootPid = 100, Pids = { 100 }, CreatedUnixMs = 1 };
            writer.Commit(manifest);
            return new SampleCheckpoint(Path.GetFullPath(directory), process, metadata, runs, manifest);
        }
    }

    public static byte[] RandomBytes(Random random, int length)
    {
        byte[] data = new byte[length];
        random.NextBytes(data);
        return data;
    }
}
