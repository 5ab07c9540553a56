cwlVersion: v1.2
class: CommandLineTool
requirements:
  InitialWorkDirRequirement:
    listing:
      - entryname: greeting.txt
        entry: "hello from $(inputs.name)\n"
      - $(inputs.infile)
inputs:
  name: string
  infile: File
  note:
    type: File
    default: {class: File, location: note.txt}
baseCommand: [sh, -c]
arguments: ["cat greeting.txt $(inputs.infile.basename) $(inputs.note.path) > all.txt"]
outputs:
  all: {type: File, outputBinding: {glob: all.txt}}
